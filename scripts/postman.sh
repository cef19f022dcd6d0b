#!/usr/bin/env bash
# Runs the Postman collection (docs/postman/) with newman against a live server: a fresh
# database and Redis prefix, the debug binary on 127.0.0.1:18080. Installs newman from the npm
# registry into .tools/ on first use. Exit code: newman's.
set -euo pipefail
cd "$(dirname "$0")/.."

base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
db=chat_postman_$(date +%s)_$$ # this run's own database, dropped at the end
port=${POSTMAN_PORT:-18080}

if [ ! -x .tools/node_modules/.bin/newman ]; then
  echo "postman: installing newman into .tools/"
  npm install --silent --no-audit --no-fund --prefix .tools newman@6 >/dev/null
fi

psql "$base/postgres" -qc "CREATE DATABASE $db"
DATABASE_URL="$base/$db" CHAT_LISTEN="127.0.0.1:$port" CHAT_REDIS_PREFIX="postman:$db:" \
  CHAT_BCRYPT_COST=4 CHAT_JWT_SECRET=postman-run RUST_LOG=warn \
  "${CARGO_TARGET_DIR:-target}/debug/chat-server" serve > /tmp/chat-postman-server.log 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" --scan --pattern "postman:$db:*" | xargs -r redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379}" del >/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "postman: server did not become ready"; cat /tmp/chat-postman-server.log; exit 1; }

.tools/node_modules/.bin/newman run docs/postman/chat-server.postman_collection.json \
  -e docs/postman/local.postman_environment.json \
  --env-var "baseUrl=http://127.0.0.1:$port" --env-var "wsUrl=ws://127.0.0.1:$port" \
  --color off
