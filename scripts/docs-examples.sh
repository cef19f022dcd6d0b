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

# shellcheck source=scripts/test-server.sh
. scripts/test-server.sh
avito=$(free_port) extra_a=$(free_port) extra_b=$(free_port)
start_test_server docs CHAT_DOOR_AVITO=true CHAT_AVITO_LISTEN="127.0.0.1:$avito"
port=$server_port
work=$(mktemp -d /tmp/chat-docs-examples.XXXXXX)
trap 'stop_test_server; rm -rf "$work"' EXIT
# The blocks' own servers (README "Running several instances") and the CLI use this run's
# database and Redis prefix, as a reader's would use make run's.
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}/$server_db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}" CHAT_REDIS_PREFIX="$server_prefix"

export CHAT_BCRYPT_COST=4
DOCS_PORTS="8080=$port,9000=$avito,8081=$extra_a,8082=$extra_b" DOCS_TARGET="$target/debug" \
  python3 scripts/docs_examples.py "$root" "$work" || { echo "--- server log (tail):"; tail -30 "$server_log"; exit 1; }
