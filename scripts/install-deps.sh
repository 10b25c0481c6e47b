#!/usr/bin/env bash
# What building and testing coracle needs on Debian/Ubuntu: run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential pkg-config libseccomp-dev ca-certificates \
  docker-registry busybox-static apache2-utils \
  skopeo umoci crun jq zstd gzip tar coreutils procps curl bsdutils \
  nftables iproute2 >/dev/null
command -v cargo >/dev/null || { echo "install a Rust toolchain (rustup) first" >&2; exit 1; }
