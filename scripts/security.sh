#!/usr/bin/env bash
# `make security`: the security regression suite (crates/security, `chat-security`).
#
# With SECURITY_URL set, it runs against that live server as it is (optionally
# SECURITY_PEER_URL, SECURITY_DOOR001_URL, SECURITY_JWT_SECRET, SECURITY_CLI; see
# `chat-security --help`); checks that need what the server does not offer are skipped.
#
# Otherwise it starts its own deployment from the debug binaries: two instances on one fresh
# database and Redis prefix (unique per run, removed afterwards), door 001 switched on on its own
# listener, the per-address login limit off (the suite logs in a lot from one address), the send
# limit at its default; then runs every check against it. Exit code: the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${CARGO_TARGET_DIR:-target}/debug
server=${SECURITY_SERVER_BIN:-$bin/chat-server}
if [ -n "${SECURITY_URL:-}" ]; then
  exec "$bin/chat-security" "$@"
fi

base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
db=chat_security_$(date +%s)_$$
port=${SECURITY_PORT:-18180}
export DATABASE_URL="$base/$db" REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export CHAT_REDIS_PREFIX="security:$db:" CHAT_BCRYPT_COST=4 CHAT_JWT_SECRET="security-$db"
export CHAT_RATE_AUTH_PER_MIN=0 RUST_LOG=${RUST_LOG:-warn}
log=${TMPDIR:-/tmp}/$db

psql "$base/postgres" -qc "CREATE DATABASE $db"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  redis-cli -u "$REDIS_URL" --scan --pattern "security:$db:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
}
trap cleanup EXIT

ready() { # url
  for _ in $(seq 1 120); do
    curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "security: $1 did not become ready" >&2
  cat "$log".*.log >&2
  return 1
}

CHAT_LISTEN="127.0.0.1:$port" CHAT_DOOR_AVITO=true CHAT_AVITO_LISTEN="127.0.0.1:$((port + 1))" \
  "$server" serve >"$log.a.log" 2>&1 &
pids+=($!)
ready "http://127.0.0.1:$port"
# The second instance starts once the first has migrated the database.
CHAT_LISTEN="127.0.0.1:$((port + 2))" "$server" serve >"$log.b.log" 2>&1 &
pids+=($!)
ready "http://127.0.0.1:$((port + 2))"

"$bin/chat-security" --url "http://127.0.0.1:$port" --peer-url "http://127.0.0.1:$((port + 2))" \
  --door001-url "http://127.0.0.1:$((port + 1))" --jwt-secret "$CHAT_JWT_SECRET" --cli "$server" "$@"
