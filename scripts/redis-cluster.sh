#!/usr/bin/env bash
# A local Redis Cluster for trying REDIS_CLUSTER_URLS: 3 masters and 3 replicas on 127.0.0.1.
#
#   scripts/redis-cluster.sh start [base port, default 7000]   # prints the REDIS_CLUSTER_URLS value
#   scripts/redis-cluster.sh stop  [base port]
#
# Nodes listen on base..base+5 (cluster bus on +10000), keep nothing on disk but their cluster
# config (under target/redis-cluster-<base>/), and fail over after 1 s. Needs redis-server and
# redis-cli 7 (installed with apt-get when missing, as scripts/services.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:-}; base=${2:-7000}
target=${CARGO_TARGET_DIR:-target}; case "$target" in /*) ;; *) target="$(pwd)/$target";; esac
dir="$target/redis-cluster-$base"
ports=$(seq "$base" $((base + 5)))

case "$action" in
  start)
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
      apt-get install -y redis-server redis-tools >/dev/null
    fi
    mkdir -p "$dir"; rm -f "$dir"/nodes-*.conf
    for p in $ports; do
      redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 1000 \
        --cluster-replica-validity-factor 0 --repl-diskless-sync-delay 0 \
        --save "" --appendonly no --dir "$dir" --daemonize yes --logfile "$dir/$p.log"
    done
    for p in $ports; do
      for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli --cluster create $(for p in $ports; do printf '127.0.0.1:%s ' "$p"; done) \
      --cluster-replicas 1 --cluster-yes >/dev/null
    for _ in $(seq 1 100); do
      redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.2
    done
    echo "$(for p in $ports; do printf 'redis://127.0.0.1:%s,' "$p"; done | sed 's/,$//')"
    ;;
  stop)
    for p in $ports; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
    rm -rf "$dir"
    ;;
  *) sed -n '2,9p' "$0"; exit 2;;
esac
