#!/usr/bin/env bash
# Runs one chat-load scenario (crates/loadgen) against a server:
#   scripts/load.sh <idle|fanout|pipeline|persist|history|reconnect> [chat-load options]
#   scripts/load.sh stop        # stop the load server this script started
#
# With LOAD_URL set (http://host:port), runs against that server and starts nothing.
# Otherwise it builds the release binaries and, unless one already answers, starts a load
# server on 127.0.0.1:$LOAD_PORT (default 18090) with its own database (chat_load, kept
# between runs so big setups such as the 1,000,000-message chat are made once), its own Redis
# prefix, bcrypt cost 4 (setup logs in thousands of users), rate limits off, 24 h access tokens
# and warn-level logs. The server keeps running for the next scenario; its log is
# target/load-server.log. LOAD_SERVER_BIN picks another server binary (before/after runs);
# LOAD_PROFILE=debug uses debug builds (the smoke run in `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

port=${LOAD_PORT:-18090}
profile=${LOAD_PROFILE:-release}
target_dir=${CARGO_TARGET_DIR:-target}
pidfile="$target_dir/load-server-$port.pid"
base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
db=${LOAD_DB:-chat_load}

if [ "${1:-}" = stop ]; then
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
  exit 0
fi
[ $# -ge 1 ] || { sed -n '2,4p' "$0"; exit 2; }

flag=--release; [ "$profile" = debug ] && flag=
cargo build $flag --locked -p chat-load -p chat-api --bin chat-load --bin chat-server >&2

if [ -z "${LOAD_URL:-}" ]; then
  LOAD_URL="http://127.0.0.1:$port"
  if ! curl -fsS "$LOAD_URL/readyz" >/dev/null 2>&1; then
    DATABASE_URL="$base/postgres" bash scripts/services.sh >&2
    exists=$(psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")
    [ "$exists" = 1 ] || psql "$base/postgres" -qc "CREATE DATABASE $db"
    DATABASE_URL="$base/$db" CHAT_LISTEN="127.0.0.1:$port" CHAT_REDIS_PREFIX="load:$db:" \
      CHAT_BCRYPT_COST=4 CHAT_RATE_SEND_PER_MIN=0 CHAT_RATE_AUTH_PER_MIN=0 CHAT_WS_FRAMES_PER_SEC=0 \
      CHAT_ACCESS_TTL_SECS=86400 CHAT_JWT_SECRET="load-$db" RUST_LOG=warn \
      nohup "${LOAD_SERVER_BIN:-$target_dir/$profile/chat-server}" serve \
      > "$target_dir/load-server.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 120); do
      curl -fsS "$LOAD_URL/readyz" >/dev/null 2>&1 && break
      sleep 0.5
    done
    curl -fsS "$LOAD_URL/readyz" >/dev/null || { echo "load: server did not start" >&2; cat "$target_dir/load-server.log" >&2; exit 1; }
    echo "load: server pid $(cat "$pidfile") on $LOAD_URL" >&2
  fi
fi
exec "$target_dir/$profile/chat-load" "$@" --url "$LOAD_URL"
