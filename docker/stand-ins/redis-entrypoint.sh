#!/bin/sh
# Stand-in for the official redis image's entrypoint (scripts/compose-images.sh): runs
# redis-server as user redis in /data with protected mode off, as the official image builds it
# (the network, not the server, keeps other hosts out).
set -eu
if [ "${1:-redis-server}" = redis-server ] || [ "${1#-}" != "${1:-}" ]; then
  [ "${1:-}" = redis-server ] && shift
  chown redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$@" --protected-mode no
fi
exec "$@"
