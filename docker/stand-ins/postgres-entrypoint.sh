#!/bin/sh
# Stand-in for the official postgres image's entrypoint (scripts/compose-images.sh): the same
# contract for what the compose files use. On an empty $PGDATA it runs initdb with
# POSTGRES_USER (default postgres) and POSTGRES_PASSWORD (required unless
# POSTGRES_HOST_AUTH_METHOD=trust), lets other hosts in with scram-sha-256 (or that method),
# listens on every address and creates POSTGRES_DB; then runs the server as user postgres.
set -eu
if [ "${1:-postgres}" = postgres ]; then
  [ $# -gt 0 ] && shift
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  as_postgres="setpriv --reuid=postgres --regid=postgres --init-groups"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
      echo "error: POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
      exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    chown postgres "$pwfile"
    $as_postgres initdb -D "$PGDATA" -U "$user" -E UTF8 --auth-local=trust --auth-host="$method" --pwfile="$pwfile" >/dev/null
    rm -f "$pwfile"
    echo "host all all all $method" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    db=${POSTGRES_DB:-$user}
    if [ "$db" != postgres ]; then
      $as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
      $as_postgres psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -qc "CREATE DATABASE \"$db\""
      $as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "database initialised in $PGDATA"
  fi
  exec $as_postgres postgres -D "$PGDATA" "$@"
fi
exec "$@"
