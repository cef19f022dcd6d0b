# Stand-in for rust:1.95-bookworm (scripts/compose-images.sh): Debian with a C toolchain (make
# too, for jemalloc) and the host's Rust toolchain (copied into the build context as rust/), laid
# out as the official image
# (CARGO_HOME=/usr/local/cargo, cargo and rustc on PATH), trusting the host's local CAs
# (ca/, from /usr/local/share/ca-certificates: a TLS-intercepting egress proxy's, say) so that
# cargo reaches crates.io as the host does.
FROM debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make pkg-config curl git \
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY rust /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
