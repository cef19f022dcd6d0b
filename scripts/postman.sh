#!/usr/bin/env bash
# Runs the Postman collection (docs/postman/) with newman against a live server: a fresh
# database and Redis prefix (scripts/test-server.sh), the debug binary on 127.0.0.1:18080. Installs newman from the npm
# registry into .tools/ on first use. Exit code: newman's.
set -euo pipefail
cd "$(dirname "$0")/.."

server_port=${POSTMAN_PORT:-18080}

if [ ! -x .tools/node_modules/.bin/newman ]; then
  echo "postman: installing newman into .tools/"
  npm install --silent --no-audit --no-fund --prefix .tools newman@6 >/dev/null
fi

# shellcheck source=scripts/test-server.sh
. scripts/test-server.sh
start_test_server postman CHAT_JWT_SECRET=postman-run
port=$server_port

.tools/node_modules/.bin/newman run docs/postman/chat-server.postman_collection.json \
  -e docs/postman/local.postman_environment.json \
  --env-var "baseUrl=http://127.0.0.1:$port" --env-var "wsUrl=ws://127.0.0.1:$port" \
  --color off
