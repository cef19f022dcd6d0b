#!/usr/bin/env bash
# `make e2e`: the web client (crates/api/web) tested in a real browser.
#
# Installs what is missing: Debian's chromium (apt; never a browser download) and e2e/'s npm
# packages from its lock file (puppeteer-core, told not to download a browser). Runs the node
# unit tests of the client's state rules (e2e/state.test.mjs), then e2e/browser.mjs against
# two debug instances it starts on a fresh database and Redis prefix (unique per run, removed
# afterwards). Screenshots and server logs: target/e2e/. Exit code: 1 if anything failed.
#
# `scripts/e2e.sh bench` (make e2e-bench) runs e2e/bench.mjs instead, against the release
# binary: the client's performance figures (BENCHMARKS.md "Web client"), target/e2e-bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
  echo "e2e: installing Debian's chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
export CHROMIUM=${CHROMIUM:-$(command -v chromium)}
if [ ! -d e2e/node_modules/puppeteer-core ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
  echo "e2e: installing e2e/ packages (npm ci)"
  (cd e2e && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
fi

mkdir -p target
if [ "$mode" = test ]; then
  echo "e2e: unit tests of the client's state (node --test)"
  (cd e2e && node --test state.test.mjs) > target/e2e-unit.log 2>&1 || { cat target/e2e-unit.log; exit 1; }
  grep -E '^# (pass|fail)' target/e2e-unit.log | tr '\n' ' '; echo
fi

base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
db=chat_e2e_$(date +%s)_$$
export DATABASE_URL="$base/$db" REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export CHAT_REDIS_PREFIX="e2e:$db:" CHAT_BCRYPT_COST=4 CHAT_JWT_SECRET="e2e-$db"
# Logins from one address are not limited (every user registers from 127.0.0.1); sends are, at
# 30 a minute, so the browser test meets the limit without waiting for it (bench: off).
export CHAT_RATE_AUTH_PER_MIN=0 RUST_LOG=${RUST_LOG:-warn}
if [ "$mode" = bench ]; then export CHAT_RATE_SEND_PER_MIN=0; else export CHAT_RATE_SEND_PER_MIN=30; fi
profile=debug; [ "$mode" = bench ] && profile=release
export E2E_SERVER_BIN=${E2E_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/$profile/chat-server}
export E2E_PORT=${E2E_PORT:-18280}
export E2E_CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
# The database exists before any server starts (a server that cannot connect stops).
psql "$base/postgres" -qc "CREATE DATABASE $db"
cleanup() {
  psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  redis-cli -u "$REDIS_URL" --scan --pattern "e2e:$db:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
}
trap cleanup EXIT
if [ "$mode" = bench ]; then
  node e2e/bench.mjs
else
  rm -rf target/e2e
  node e2e/browser.mjs
fi
