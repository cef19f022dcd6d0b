#!/usr/bin/env bash
# The images the compose files use, for machines where no image registry is reachable.
#
# For each of debian:bookworm-slim, debian:bookworm, postgres:15, redis:7, nginx:1.27-alpine and
# rust:1.95-bookworm: nothing is done when the image is already here or `docker pull` gets it
# (the official image, as on any normal machine). Only when the pull fails is a local stand-in
# built under the same name (docker/stand-ins/):
#   - debian:bookworm(-slim): debootstrap --variant=minbase from the mirror apt uses here;
#   - postgres:15, redis:7, nginx: Debian's packages on that base, with entrypoints that keep the
#     contract the stacks use (POSTGRES_USER/PASSWORD/DB and POSTGRES_HOST_AUTH_METHOD, the data
#     volume, pg_isready; redis-server arguments, redis-cli; /etc/nginx/nginx.conf, wget);
#   - rust:1.95-bookworm: Debian with gcc, the host's Rust toolchain (~/.rustup, no docs) and
#     the host's local CAs (/usr/local/share/ca-certificates), so cargo reaches crates.io.
# Needs: docker (a running engine), debootstrap (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

have() { docker image inspect "$1" >/dev/null 2>&1; }
pulled() { timeout 120 docker pull -q "$1" >/dev/null 2>&1; }
log() { echo "compose-images: $*" >&2; }

mirror() {
  local uri
  uri=$(grep -rhoE '^(URIs:|deb) +\S+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | awk '{print $2}' | grep -E '^https?://.*/debian/?$' | head -1)
  echo "${uri:-http://deb.debian.org/debian}"
}

base() {
  if have debian:bookworm-slim && have debian:bookworm; then return; fi
  if pulled debian:bookworm-slim && pulled debian:bookworm; then return; fi
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
  local dir
  dir=$(mktemp -d /var/tmp/bookworm.XXXXXX)
  chmod 755 "$dir" # the image's / (mktemp makes it 0700)
  log "building debian:bookworm-slim with debootstrap from $(mirror) (a few minutes)"
  debootstrap --variant=minbase bookworm "$dir" "$(mirror)" >/dev/null
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import -c 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  docker tag debian:bookworm-slim debian:bookworm
  rm -rf "$dir"
}

standin() { # name dockerfile [context]
  local name=$1 file=$2 context=${3:-docker/stand-ins}
  if have "$name" || pulled "$name"; then return; fi
  log "building a stand-in for $name from Debian's packages"
  docker build -q -t "$name" -f "docker/stand-ins/$file" "$context" >/dev/null
}

rust() {
  local name=rust:1.95-bookworm
  if have "$name" || pulled "$name"; then return; fi
  local toolchain
  toolchain=$(rustup toolchain list -v 2>/dev/null | awk '/\(default\)/ {print $NF; exit}')
  [ -d "$toolchain" ] || toolchain=$(dirname "$(dirname "$(rustup which rustc)")")
  local ctx
  ctx=$(mktemp -d /var/tmp/rust-image.XXXXXX)
  log "building a stand-in for $name with the host's toolchain ($($toolchain/bin/rustc --version))"
  mkdir -p "$ctx/rust"
  tar -C "$toolchain" --exclude=./share/doc -c . | tar -C "$ctx/rust" -x
  mkdir -p "$ctx/ca"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
  cp docker/stand-ins/rust.Dockerfile "$ctx/Dockerfile"
  docker build -q -t "$name" "$ctx" >/dev/null
  rm -rf "$ctx"
}

case "${1:-all}" in
  base) base ;;
  all)
    base
    standin postgres:15 postgres.Dockerfile
    standin redis:7 redis.Dockerfile
    standin nginx:1.27-alpine nginx.Dockerfile
    rust
    ;;
  *) echo "usage: $0 [all|base]" >&2; exit 2 ;;
esac
log "images ready"
