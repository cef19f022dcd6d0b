#!/usr/bin/env bash
# `make schemathesis`: schemathesis `--checks all` against the server's own OpenAPI document
# (/api-docs/openapi.json) and the debug build on a fresh database and Redis prefix (this run's
# own, removed at the end). Installs schemathesis (pinned) into .tools/st, a Python virtualenv,
# on first use. Requests carry the bearer token of a user registered for the run; rate limits are
# off so that generated requests test the document, not the limiter (429 is documented anyway).
# Options: ST_MAX_EXAMPLES (per operation, default 100), ST_ARGS (more `st run` arguments).
# Exit code: schemathesis's (1 on any failure). Report: target/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
version=4.32.5

if [ ! -x .tools/st/bin/st ] || ! .tools/st/bin/st --version 2>/dev/null | grep -q "$version"; then
  echo "schemathesis: installing schemathesis $version into .tools/st (PyPI)"
  python3 -m venv .tools/st
  .tools/st/bin/pip install --quiet --disable-pip-version-check "schemathesis==$version"
fi

# shellcheck source=scripts/test-server.sh
. scripts/test-server.sh
start_test_server st CHAT_RATE_AUTH_PER_MIN=0 CHAT_RATE_SEND_PER_MIN=0 CHAT_JWT_SECRET=schemathesis-run
url=$server_url
log=$server_log

# A user whose token the requests carry, with a group and a message so that some generated ids
# exist. `logout-all` ends every session of its caller, so it runs last, with its own user.
user() {
  curl -fsS -X POST "$url/api/v1/auth/register/" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"email\":\"$1@example.com\",\"password\":\"password123\",\"password2\":\"password123\"}" >/dev/null
  curl -fsS -X POST "$url/api/v1/auth/login/" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"password123\"}" | jq -r .access
}
token=$(user fuzzer)
group=$(curl -fsS -X POST "$url/api/v1/chats/groups" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"title":"Fuzzing"}' | jq .id)
curl -fsS -X POST "$url/api/v1/chats/$group/messages" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"text":"first"}' >/dev/null

mkdir -p "$target/schemathesis"
rc=0
st() {
  # shellcheck disable=SC2086
  .tools/st/bin/st --config-file scripts/schemathesis.toml run "$url/api-docs/openapi.json" --url "$url" --checks all \
    --max-examples "${ST_MAX_EXAMPLES:-100}" --seed 1 --workers 1 --no-color --generation-allow-x00 false \
    --report junit --report-dir "$target/schemathesis" ${ST_ARGS:-} "$@" || rc=$?
}
# The WebSocket endpoints (tag `websocket`) are left to the gateway and door tests: schemathesis
# speaks plain HTTP, and a handshake is not a request it can judge.
st -H "Authorization: Bearer $token" --exclude-operation-id logout_all --exclude-tag websocket
st -H "Authorization: Bearer $(user fuzzer2)" --include-operation-id logout_all
if grep -q 'panicked' "$log"; then
  echo "schemathesis: the server panicked:"; grep -A5 panicked "$log"; rc=1
fi
echo "schemathesis: exit $rc (0: no failure in either run)"
exit $rc
