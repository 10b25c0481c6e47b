#!/usr/bin/env bash
# The main job end to end on a fresh machine (as root): build coracle, start a local
# registry (Docker Hub is not needed), build a busybox image from Debian's
# busybox-static, push it with coracle, pull it back into an empty store, unpack it, and
# run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
coracle=${CARGO_TARGET_DIR:-$PWD/target}/release/coracle

work=$(mktemp -d)
registry_pid=
cleanup() {
  # `wait` reports the registry's SIGTERM status: not an error here (set -e).
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=${REGISTRY_PORT:-5000}
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== building a busybox image"
scripts/make-busybox-image.sh "$work/layout" busybox:latest >/dev/null
export CORACLE_ROOT=$work/store-a
"$coracle" load -i "$work/layout"
"$coracle" tag busybox:latest "127.0.0.1:$port/demo/busybox:latest"
echo "== coracle push"
"$coracle" push "127.0.0.1:$port/demo/busybox:latest"

echo "== coracle pull into an empty store"
export CORACLE_ROOT=$work/store-b
"$coracle" pull "127.0.0.1:$port/demo/busybox:latest"
"$coracle" images
echo "== coracle image unpack"
"$coracle" image unpack "127.0.0.1:$port/demo/busybox:latest" "$work/rootfs"
ls "$work/rootfs"
echo "== coracle run"
"$coracle" run --rm "127.0.0.1:$port/demo/busybox:latest" \
  sh -c 'echo "hello from container $(hostname), pid $$, as $(id -un)"; grep CapEff /proc/self/status'
"$coracle" images
