#!/usr/bin/env bash
# Several instances of one deployment on this machine, each with its own share of the sockets,
# all loaded at once: does each instance pay only for its own deliveries? (issue "Fan-out at
# scale", item 2; BENCHMARKS.md §10)
#
#   scripts/scale-out.sh [--spread 1:1:1:2] [--groups 20] [--members 5] [--rate 10] [--secs 15]
#
# Starts one release instance per weight of --spread on ports 18101, 18102, ... (database
# chat_scale, its own Redis prefix, the load settings of scripts/load.sh), then one `chat-load
# fanout` per instance at the same time: --groups × weight groups of --members sockets on that
# instance only, one sender per group at --rate messages/s. Prints, per instance, its share of
# the deliveries, its share of the instances' CPU over the send phase, its CPU per delivery, and
# the events its bus decoded. SCALE_SERVER_BIN picks another server binary (before/after);
# REDIS_CLUSTER_URLS runs the instances on a Redis Cluster. The instances are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

spread=1:1:1:2; groups=20; members=5; rate=10; secs=15
while [ $# -gt 0 ]; do
  case "$1" in
    --spread) spread=$2; shift 2;;
    --groups) groups=$2; shift 2;;
    --members) members=$2; shift 2;;
    --rate) rate=$2; shift 2;;
    --secs) secs=$2; shift 2;;
    *) sed -n '2,15p' "$0"; exit 2;;
  esac
done
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -p chat-load -p chat-api --bin chat-load --bin chat-server >&2
server=${SCALE_SERVER_BIN:-$target_dir/release/chat-server}
base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
db=chat_scale
DATABASE_URL="$base/postgres" bash scripts/services.sh >&2
[ "$(psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] \
  || psql "$base/postgres" -qc "CREATE DATABASE $db"
run=$(date +%s)-$$
out="$target_dir/scale-out-$run"; mkdir -p "$out"

IFS=: read -r -a weights <<< "$spread"
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
for i in "${!weights[@]}"; do
  port=$((18101 + i))
  DATABASE_URL="$base/$db" CHAT_LISTEN="127.0.0.1:$port" CHAT_REDIS_PREFIX="scale:$run:" \
    CHAT_BCRYPT_COST=4 CHAT_RATE_SEND_PER_MIN=0 CHAT_RATE_AUTH_PER_MIN=0 CHAT_WS_FRAMES_PER_SEC=0 \
    CHAT_ACCESS_TTL_SECS=86400 CHAT_JWT_SECRET="scale-$db" RUST_LOG=warn \
    "$server" serve > "$out/server-$i.log" 2>&1 &
  pids+=($!)
done
for i in "${!weights[@]}"; do
  for _ in $(seq 1 120); do curl -fsS "http://127.0.0.1:$((18101 + i))/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
done

# Bytes Redis sent to its clients so far: one number, or one per node of a cluster.
redis_out() {
  local urls=${REDIS_CLUSTER_URLS:-${REDIS_URL:-redis://127.0.0.1:6379}}
  for u in ${urls//,/ }; do
    redis-cli -u "$u" INFO stats | awk -F: '/^total_net_output_bytes/ {printf "%d ", $2+0}'
  done
}
events() { curl -fsS "http://127.0.0.1:$1/metrics" | awk '$1 == "chat_bus_events_total" {print $2}' | head -1; }
redis_out > "$out/redis0"
loads=()
for i in "${!weights[@]}"; do
  w=${weights[$i]}; port=$((18101 + i))
  echo "${w}" > "$out/weight-$i"
  events "$port" > "$out/events0-$i" || echo 0 > "$out/events0-$i"
  "$target_dir/release/chat-load" fanout --url "http://127.0.0.1:$port" --workers 1 \
    --prefix "s$i-$run" --groups $((groups * w)) --members "$members" --senders 1 \
    --rate "$(echo "$rate * $groups * $w" | bc)" --secs "$secs" --json "$out/load-$i.json" \
    > /dev/null 2> "$out/load-$i.err" &
  loads+=($!)
done
failed=0
for p in "${loads[@]}"; do wait "$p" || failed=1; done
for i in "${!weights[@]}"; do events $((18101 + i)) > "$out/events1-$i" || echo 0 > "$out/events1-$i"; done
redis_out > "$out/redis1"

echo "cpu: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), spread $spread, $groups groups × weight of $members members, $rate msgs/s per group, $secs s"
python3 - "$out" "${#weights[@]}" <<'EOF'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(n):
    r = {m["metric"]: m["value"] for m in json.load(open(f"{out}/load-{i}.json"))["rows"]}
    ev = float(open(f"{out}/events1-{i}").read() or 0) - float(open(f"{out}/events0-{i}").read() or 0)
    rows.append((i, int(open(f"{out}/weight-{i}").read()), r.get("deliveries", 0),
                 r.get("server CPU, % of one core", 0), r.get("server CPU per delivery, µs", 0),
                 r.get("lost deliveries", 0), ev))
dsum = sum(r[2] for r in rows) or 1
csum = sum(r[3] for r in rows) or 1
print("instance weight deliveries share_of_deliveries share_of_cpu cpu_per_delivery_us lost bus_events")
for i, w, d, c, us, lost, ev in rows:
    print(f"{i} {w} {d:.0f} {d/dsum:.3f} {c/csum:.3f} {us:.2f} {lost:.0f} {ev:.0f}")
worst = max(abs((r[3]/csum) / (r[2]/dsum) - 1) for r in rows if r[2])
print(f"largest deviation of an instance's CPU share from its delivery share: {worst:.1%}")
before = [int(x) for x in open(f"{out}/redis0").read().split()]
after = [int(x) for x in open(f"{out}/redis1").read().split()]
sent = [a - b for a, b in zip(after, before)]
nodes = " (per node: " + ", ".join(f"{s / 1e6:.1f}" for s in sent) + ")" if len(sent) > 1 else ""
print(f"Redis sent {sum(sent) / 1e6:.1f} MB to its clients during the run{nodes}")
EOF
exit $failed
