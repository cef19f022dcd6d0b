#!/usr/bin/env bash
# `make bench-door001`: door 001's whole-history read (`/messages/get`, streamed) on chats of
# 10,000 and 100,000 messages (`SIZES="10000 100000"`), `RUNS` reads each (default 5): wall time
# per read (curl's time_total, median and range), bytes, server CPU per read (from
# /proc/<pid>/stat), and the server's memory (VmRSS before, VmHWM after every read of the size).
# The release build on this run's own database and Redis prefix (removed at the end); the
# messages are stored straight into PostgreSQL (generate_series), the chat and users through
# the door. Prints the CPU model (figures vary between machines and over time).
# `SKIP_BUILD=1` uses the binary as built (`CARGO_TARGET_DIR` says where); `SERVER_BIN=path`
# runs another build (a saved one, for before/after: `SERVER_ENV=` then drops settings it may
# not know, and a read that returns fewer messages is reported, not failed).
# `PROFILE=perf.data` records the server with `perf record -g` during the reads of the last size.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-10000 100000}
RUNS=${RUNS:-5}
target=${CARGO_TARGET_DIR:-target}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p chat-api --bin chat-server
command -v jq >/dev/null || apt-get install -y -qq jq >/dev/null

# shellcheck source=scripts/test-server.sh
. scripts/test-server.sh
avito=$(free_port)
server_bin=${SERVER_BIN:-$target/release/chat-server}
# shellcheck disable=SC2086 # SERVER_ENV is a list of VAR=value words
TEST_SERVER_BIN="$server_bin" start_test_server bench001 \
  CHAT_DOOR_AVITO=true CHAT_AVITO_LISTEN="127.0.0.1:$avito" ${SERVER_ENV-CHAT_AVITO_RATE_PER_MIN=0}
door="http://127.0.0.1:$avito"
db="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}/$server_db"
post() { curl -fsS -H 'Content-Type: application/json' -d "$2" "$door$1"; }
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$server_pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
hz=$(getconf CLK_TCK)

echo "door 001 whole-history read · $server_bin · CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) vCPU)"
reader=$(post /users/add '{"username": "bench_reader"}' | jq .id)
writer=$(post /users/add '{"username": "bench_writer"}' | jq .id)
for n in $SIZES; do
  chat=$(post /chats/add "{\"name\": \"bench_chat_$n\", \"users\": [$writer, $reader]}" | jq .id)
  psql "$db" -qc "INSERT INTO messages (chat_id, seq, author_id, kind, text)
      SELECT $chat, g, CASE WHEN g % 2 = 0 THEN $reader ELSE $writer END, 'text',
             'message ' || g || ' of a big chat, a line of ordinary length'
      FROM generate_series(1, $n) g;
    UPDATE chats SET last_seq = $n, last_message_at = now() WHERE id = $chat;
    ANALYZE messages;"
  rss_before=$(status VmRSS)
  times=()
  cpu_before=$(cpu_ticks)
  if [ -n "${PROFILE:-}" ] && [ "$n" = "${SIZES##* }" ]; then
    perf record -q --call-graph dwarf,16384 -F 999 -o "$PROFILE" -p "$server_pid" 2>/dev/null & perf_pid=$!
    sleep 0.5
  fi
  for _ in $(seq 1 "$RUNS"); do
    line=$(curl -fsS -o /tmp/bench-door001.json -w '%{time_total} %{size_download}' \
      -H 'Content-Type: application/json' -d "{\"chat\": $chat}" "$door/messages/get")
    times+=("${line% *}")
    bytes=${line#* }
    got=$(jq length /tmp/bench-door001.json)
    if [ "$got" != "$n" ]; then
      [ -n "${SERVER_BIN:-}" ] || { echo "bench-door001: got $got of $n messages"; exit 1; }
      echo "bench-door001: this build returned $got of $n messages"
    fi
  done
  cpu_ms=$(( ($(cpu_ticks) - cpu_before) * 1000 / hz / RUNS ))
  if [ -n "${perf_pid:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  median=$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")
  echo "$n messages: median $(awk "BEGIN {printf \"%.0f\", $median * 1000}") ms" \
    "(range $(awk "BEGIN {printf \"%.0f\", $(echo "$sorted" | head -1) * 1000}")-$(awk "BEGIN {printf \"%.0f\", $(echo "$sorted" | tail -1) * 1000}") ms, $RUNS reads)," \
    "$((bytes / 1024)) KiB, server CPU ${cpu_ms} ms/read," \
    "server RSS ${rss_before} KiB before, peak $(status VmHWM) KiB, $(status VmRSS) KiB after"
done
rm -f /tmp/bench-door001.json
