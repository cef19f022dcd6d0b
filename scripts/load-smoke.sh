#!/usr/bin/env bash
# A few seconds of each chat-load scenario with small numbers against a fresh debug server, so
# the generator keeps working (part of `make test`). Nothing here asserts speed: a scenario fails
# only when chat-load finds a broken promise (lost, duplicated or reordered deliveries, an
# acknowledged message not stored, a socket not synced, a short page) or cannot run.
# Prints a cargo-style "test result:" line that `make test` counts in its summary.
set -uo pipefail
cd "$(dirname "$0")/.."

# A database of its own, named for this run (never one another run or person made).
export LOAD_PROFILE=debug LOAD_PORT=${LOAD_SMOKE_PORT:-18091} LOAD_DB=chat_load_smoke_$(date +%s)_$$
base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
log=${CARGO_TARGET_DIR:-target}/load-smoke.log

bash scripts/load.sh stop
# A fresh server (fresh JWT secret): cached tokens of an earlier smoke run are dropped.
rm -f "${TMPDIR:-/tmp}/chat-load/tokens-http___127_0_0_1_$LOAD_PORT.json"

passed=0; failed=0; : > "$log"
run() {
  echo "load smoke: $*"
  if bash scripts/load.sh "$@" --workers 2 --prefix smoke >> "$log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "load smoke FAILED: $*"; tail -n 40 "$log"
  fi
}
run idle --sockets 60 --group-size 20 --hold-secs 1
run fanout --groups 3 --members 10 --senders 2 --rate 200 --secs 2
run fanout --protocol door002 --groups 2 --members 5 --senders 2 --rate 50 --secs 2
run pipeline --protocol door002 --groups 1 --members 3 --rate 300 --secs 2
run persist --chats 10 --members 2 --rates 100,max --step-secs 1 --hot-senders 10 --hot-secs 1
run history --messages 500 --secs 1 --concurrency 2
run reconnect --sockets 60 --group-size 20 --timeout-secs 30

bash scripts/load.sh stop
psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $LOAD_DB WITH (FORCE)" >/dev/null
redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" --scan --pattern "load:$LOAD_DB:*" | xargs -r redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" del >/dev/null
status=ok; [ "$failed" = 0 ] || status=FAILED
echo "test result: $status. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out (load smoke, log: $log)"
[ "$failed" = 0 ]
