#!/usr/bin/env bash
# Makes PostgreSQL and Redis reachable for `make run` / `make test`, then creates the database.
#
# For each service that does not answer on its port, in order:
#   1. start the locally installed server (Debian's pg_ctlcluster, redis-server);
#   2. install it with the system package manager (apt-get), then start it;
#   3. start it with `docker compose -f docker-compose.dev.yml` when a Docker engine runs.
# Reads DATABASE_URL (default postgres://postgres@127.0.0.1:5432/chat) and REDIS_URL
# (default redis://127.0.0.1:6379); only local hosts are started, remote ones are just checked.
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chat}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

# host, port and database name out of the URLs (user[:pass]@host:port/db).
pg_rest=${DATABASE_URL#*://}; pg_rest=${pg_rest#*@}
PG_HOSTPORT=${pg_rest%%/*}; PG_DB=${pg_rest#*/}; PG_DB=${PG_DB%%\?*}
PG_HOST=${PG_HOSTPORT%%:*}; PG_PORT=${PG_HOSTPORT##*:}; [ "$PG_PORT" = "$PG_HOST" ] && PG_PORT=5432
r_rest=${REDIS_URL#*://}; r_rest=${r_rest#*@}; r_rest=${r_rest%%/*}
REDIS_HOST=${r_rest%%:*}; REDIS_PORT=${r_rest##*:}; [ "$REDIS_PORT" = "$REDIS_HOST" ] && REDIS_PORT=6379

say() { echo "services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
is_local() { case "$1" in 127.*|localhost|::1) return 0;; *) return 1;; esac; }

pg_up() { { exec 4<>"/dev/tcp/$PG_HOST/$PG_PORT"; } 2>/dev/null || return 1; exec 4>&-; }
redis_up() {
  { exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3; local reply=""; read -r -t 2 reply <&3 || true; exec 3>&-
  [[ $reply == +PONG* ]]
}
wait_for() { # name check
  for _ in $(seq 1 60); do "$2" && return 0; sleep 0.5; done
  say "$1 did not come up"; return 1
}
docker_ok() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
apt_install() { command -v apt-get >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }

start_postgres() {
  if command -v pg_ctlcluster >/dev/null && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    say "starting the local PostgreSQL cluster"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    pg_up && return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null && command -v apt-get >/dev/null; then
    say "installing PostgreSQL with apt-get"
    (as_root apt-get update -q >/dev/null || true) && apt_install postgresql || true
    if [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
      local ver; ver=$(ls /etc/postgresql | sort -V | tail -n1)
      # Development only: trust local TCP connections, as the default DATABASE_URL has no password.
      as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "/etc/postgresql/$ver/main/pg_hba.conf"
      as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
      pg_up && return 0
    fi
  fi
  if docker_ok; then
    say "starting PostgreSQL with docker compose"
    docker compose -f docker-compose.dev.yml up -d postgres && return 0
  fi
  say "cannot start PostgreSQL: install it (apt-get install postgresql) or Docker, or set DATABASE_URL"
  return 1
}

start_redis() {
  local args=(--daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no)
  if ! command -v redis-server >/dev/null && command -v apt-get >/dev/null; then
    say "installing Redis with apt-get"
    (as_root apt-get update -q >/dev/null || true) && apt_install redis-server || true
  fi
  if command -v redis-server >/dev/null; then
    say "starting the local Redis"
    if [ -d /var/lib/redis ] && [ -w /var/lib/redis ] || [ "$(id -u)" = 0 ]; then
      mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
      redis-server "${args[@]}" --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    else
      redis-server "${args[@]}" --dir /tmp --logfile /tmp/chat-redis.log || true
    fi
    wait_for Redis redis_up && return 0
  fi
  if docker_ok; then
    say "starting Redis with docker compose"
    docker compose -f docker-compose.dev.yml up -d redis && return 0
  fi
  say "cannot start Redis: install it (apt-get install redis-server) or Docker, or set REDIS_URL"
  return 1
}

if ! pg_up; then
  is_local "$PG_HOST" || { say "PostgreSQL at $PG_HOST:$PG_PORT does not answer"; exit 1; }
  start_postgres && wait_for PostgreSQL pg_up
fi
if ! redis_up; then
  is_local "$REDIS_HOST" || { say "Redis at $REDIS_HOST:$REDIS_PORT does not answer"; exit 1; }
  start_redis
fi

# Create the application database when it is missing (the server migrates it at start-up).
if [ "${1:-}" = "--create-db" ] && [ -n "$PG_DB" ]; then
  admin_url="${DATABASE_URL%/*}/postgres"
  if command -v psql >/dev/null; then
    exists=$(psql "$admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" 2>/dev/null || true)
    if [ "$exists" != 1 ]; then
      say "creating database $PG_DB"
      psql "$admin_url" -qc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    fi
  elif docker_ok; then
    docker compose -f docker-compose.dev.yml exec -T postgres \
      sh -c "psql -U postgres -tAc \"SELECT 1 FROM pg_database WHERE datname='$PG_DB'\" | grep -q 1 || createdb -U postgres $PG_DB"
  fi
fi
say "PostgreSQL $PG_HOST:$PG_PORT and Redis $REDIS_HOST:$REDIS_PORT are up"
