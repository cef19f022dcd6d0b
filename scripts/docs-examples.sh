#!/usr/bin/env bash
# `make docs-examples`: runs every shell example of README.md and docs/*.md, in order, against a
# live server, and checks what each prints (scripts/docs_examples.py says how blocks are marked).
# The server is the debug build on a fresh database and Redis prefix (this run's own, removed at
# the end), every door on, door 001 on its own port, on free ports that stand in for the docs'
# 127.0.0.1:8080 / :9000 / :8081 / :8082. Installs websocat into .tools/ on first use
# (`cargo install websocat`, about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}

if ! command -v websocat >/dev/null && [ ! -x .tools/websocat/bin/websocat ]; then
  echo "docs-examples: installing websocat into .tools/websocat (cargo install, about a minute)"
  cargo install --quiet --locked --root .tools/websocat websocat
fi
export PATH="$root/.tools/websocat/bin:$PATH"
command -v jq >/dev/null || { echo "docs-examples: installing jq"; apt-get install -y -qq jq >/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) avito=$(free_port) extra_a=$(free_port) extra_b=$(free_port)
base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
redis=${REDIS_URL:-redis://127.0.0.1:6379}
db=chat_docs_$(date +%s)_$$ # this run's own database, dropped at the end
prefix="docs:$db:"
work=$(mktemp -d /tmp/chat-docs-examples.XXXXXX)

psql "$base/postgres" -qc "CREATE DATABASE $db"
export DATABASE_URL="$base/$db" REDIS_URL="$redis" CHAT_REDIS_PREFIX="$prefix"
# bcrypt cost 4 so the examples' logins are quick; every other setting as `make run` has it.
CHAT_LISTEN="127.0.0.1:$port" CHAT_DOOR_AVITO=true CHAT_AVITO_LISTEN="127.0.0.1:$avito" \
  CHAT_BCRYPT_COST=4 RUST_LOG=warn "$target/debug/chat-server" serve > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  redis-cli -u "$redis" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$redis" del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "docs-examples: server did not become ready"; cat "$work/server.log"; exit 1; }

export CHAT_BCRYPT_COST=4
DOCS_PORTS="8080=$port,9000=$avito,8081=$extra_a,8082=$extra_b" DOCS_TARGET="$target/debug" \
  python3 scripts/docs_examples.py "$root" "$work" || { echo "--- server log (tail):"; tail -30 "$work/server.log"; exit 1; }
