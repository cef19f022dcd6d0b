#!/usr/bin/env bash
# `make compose-test`: runs the compose stacks for real and checks them.
#
# 1. Docker: installed with apt-get (docker.io, docker-compose) and its daemon started
#    (`dockerd --storage-driver=overlay2`, vfs where overlay2 fails) when not reachable;
#    compose is `docker compose` (v2) when present, else `docker-compose` (1.29).
# 2. Images: scripts/compose-images.sh (official images when a registry answers, local
#    stand-ins when not).
# 3. The prod stack under its own project name on a free host port, with random secrets: build,
#    up, wait until nginx answers /readyz, then chat-compose-check through nginx only (live chat
#    on two instances, door 002, kill + resume, SIGTERM → 1012, postgres restart, down + up keeps
#    history, door 001 unreachable). `down -v` at the end, whatever happened.
# 4. The dev stack under its own project name and free ports: up (the server is built inside
#    from the mounted source), one request from the host, `down -v`.
# Prints the time of each step and `compose-test: N passed, N failed`; exit 1 on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

step_started=$(date +%s)
step() { local now; now=$(date +%s); echo "compose-test: $* (+$((now - step_started)) s)"; step_started=$now; }
passed=0; failed=0
ok() { passed=$((passed + 1)); step "ok   $*"; }
fail() { failed=$((failed + 1)); step "FAIL $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if ! command -v docker >/dev/null || { ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; }; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io docker-compose >/dev/null
fi
# overlay2 first: vfs copies every image layer whole (the prod build alone took over 15 GB and
# filled CI's disk); vfs only where overlay2 cannot start.
start_dockerd() {
  (dockerd --storage-driver="$1" >"/var/log/dockerd-$1.log" 2>&1 &)
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  pkill -x dockerd; sleep 2; return 1
}
if ! docker info >/dev/null 2>&1; then
  start_dockerd overlay2 || start_dockerd vfs
fi
docker info >/dev/null 2>&1 || { echo "compose-test: no Docker engine"; exit 1; }
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
step "docker ready ($("${compose[@]}" version --short 2>/dev/null || "${compose[@]}" version | head -1))"

bash scripts/compose-images.sh || { echo "compose-test: images could not be made"; exit 1; }
step "images ready"
cargo build --locked -q -p chat-chaos --bin chat-compose-check || exit 1
checker=${CARGO_TARGET_DIR:-target}/debug/chat-compose-check

run_id=$(date +%s)$$
prod=("${compose[@]}" -p "chatprod$run_id" -f docker-compose.prod.yml)
dev=("${compose[@]}" -p "chatdev$run_id" -f docker-compose.dev.yml)
export POSTGRES_PASSWORD=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export CHAT_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HTTP_PORT=$(free_port)
export DEV_HTTP_PORT=$(free_port) DEV_AVITO_PORT=$(free_port)
export DEV_PG_PORT=$(free_port) DEV_REDIS_PORT=$(free_port)
cleanup() {
  "${prod[@]}" down -v --remove-orphans >/dev/null 2>&1
  "${dev[@]}" down -v --remove-orphans >/dev/null 2>&1
}
trap cleanup EXIT

# The prod stack.
built=0
if "${prod[@]}" build >target/compose-build.log 2>&1; then
  built=1
  ok "prod image built ($(docker image inspect chat-server:latest --format '{{.Size}}' | awk '{printf "%.1f MB", $1/1e6}'))"
else
  fail "prod image build (target/compose-build.log)"; tail -n 30 target/compose-build.log
fi
if [ "$built" = 0 ]; then
  :
elif "${prod[@]}" up -d >target/compose-up.log 2>&1; then
  for _ in $(seq 1 180); do curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break; sleep 1; done
  if curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1; then
    ok "prod stack up and ready through nginx on :$HTTP_PORT"
    if "$checker" --url "http://127.0.0.1:$HTTP_PORT" --compose "${prod[*]}" | tee target/compose-check.log; then
      ok "prod checks ($(tail -1 target/compose-check.log))"
    else
      fail "prod checks ($(tail -1 target/compose-check.log))"
      "${prod[@]}" logs --tail 40 >target/compose-logs.log 2>&1
    fi
  else
    fail "prod stack not ready within 180 s"; "${prod[@]}" ps; "${prod[@]}" logs --tail 30
  fi
else
  fail "prod stack up (target/compose-up.log)"; tail -n 30 target/compose-up.log
fi
"${prod[@]}" down -v --remove-orphans >/dev/null 2>&1
left=$(docker ps -aq --filter "label=com.docker.compose.project=chatprod$run_id" | wc -l)
[ "$left" = 0 ] && ok "prod stack down -v: nothing left" || fail "prod stack left $left containers"

# The dev stack.
if [ "${COMPOSE_TEST_DEV:-1}" = 1 ]; then
  if "${dev[@]}" up -d >target/compose-dev.log 2>&1; then
    for _ in $(seq 1 900); do curl -fsS "http://127.0.0.1:$DEV_HTTP_PORT/readyz" >/dev/null 2>&1 && break; sleep 1; done
    if body=$(curl -fsS "http://127.0.0.1:$DEV_HTTP_PORT/readyz" 2>&1); then
      ok "dev stack built inside and serving on :$DEV_HTTP_PORT ($body)"
    else
      fail "dev stack not serving within 15 min"; "${dev[@]}" logs --tail 30 app
    fi
  else
    fail "dev stack up (target/compose-dev.log)"; tail -n 30 target/compose-dev.log
  fi
  "${dev[@]}" down -v --remove-orphans >/dev/null 2>&1
fi

echo "compose-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
