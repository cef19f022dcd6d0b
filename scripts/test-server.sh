# Sourced by the scripts that need a throwaway server (postman.sh, docs-examples.sh,
# schemathesis.sh): `start_test_server <name> [VAR=value ...]` creates this run's own database
# `chat_<name>_<time>_<pid>` and Redis prefix on the servers of TEST_DATABASE_URL / REDIS_URL,
# starts the debug `chat-server serve` (or `$TEST_SERVER_BIN`) on a free port (bcrypt cost 4, warn-level logs, the given
# settings on top), waits until /readyz answers, and on exit stops it and removes the database
# and the prefix's keys — nothing it did not create. Sets `server_url`, `server_port`,
# `server_db`, `server_prefix`, `server_log`.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_test_server() {
  local name=$1
  shift
  local base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
  local redis=${REDIS_URL:-redis://127.0.0.1:6379}
  server_port=${server_port:-$(free_port)}
  server_db=chat_${name}_$(date +%s)_$$
  server_prefix="$name:$server_db:"
  server_log=$(mktemp "/tmp/chat-$name-server.XXXXXX.log")
  server_url="http://127.0.0.1:$server_port"
  psql "$base/postgres" -qc "CREATE DATABASE $server_db"
  env DATABASE_URL="$base/$server_db" REDIS_URL="$redis" CHAT_REDIS_PREFIX="$server_prefix" \
    CHAT_LISTEN="127.0.0.1:$server_port" CHAT_BCRYPT_COST=4 RUST_LOG=warn "$@" \
    "${TEST_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/chat-server}" serve > "$server_log" 2>&1 &
  server_pid=$!
  _test_server_base=$base _test_server_redis=$redis
  trap stop_test_server EXIT
  for _ in $(seq 1 60); do
    curl -fsS "$server_url/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "$name: the server did not become ready:"
  cat "$server_log"
  exit 1
}

stop_test_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  psql "$_test_server_base/postgres" -qc "DROP DATABASE IF EXISTS $server_db WITH (FORCE)" || true
  redis-cli -u "$_test_server_redis" --scan --pattern "$server_prefix*" |
    xargs -r redis-cli -u "$_test_server_redis" del >/dev/null || true
}
