#!/usr/bin/env bash
# Container start benchmark: `coracle run --rm --network none IMAGE true` (image
# present) against bare `crun run` on a bundle of the same image and
# `podman run --rm --network=none`, in one hyperfine run; prints coracle's ratios.
# Needs root, crun, podman, umoci, skopeo, hyperfine, jq, busybox-static.
#
# Peers need two host fixes on this hybrid-cgroup machine (coracle does not): crun
# refuses hybrid cgroups until a v1 hugetlb hierarchy is mounted, and podman needs
# default_ulimits within the hard RLIMIT_NOFILE. Both are applied here, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }
for t in crun podman umoci hyperfine jq; do
  command -v "$t" >/dev/null || { echo "bench/run.sh: needs $t (apt-get install $t)" >&2; exit 1; }
done
runs=${RUNS:-30}
cargo build --release --locked -q
coracle=${CARGO_TARGET_DIR:-$PWD/target}/release/coracle

. bench/peer-fixes.sh

# Lowercase: podman names images pulled from oci: dirs after their path.
bench=/tmp/coracle-bench-run-$$
mkdir -p "$bench"
mount -t tmpfs -o size=2g tmpfs "$bench"
cleanup() { umount -R "$bench" 2>/dev/null || umount -l "$bench"; rmdir "$bench"; }
trap cleanup EXIT

scripts/make-busybox-image.sh "$bench/layout" bench/busybox:latest >/dev/null
"$coracle" --root "$bench/coracle" load -q -i "$bench/layout"
podman --root "$bench/podman" --runroot "$bench/podman-run" --storage-driver overlay \
  pull -q "oci:$bench/layout:latest" >/dev/null
podman --root "$bench/podman" --runroot "$bench/podman-run" --storage-driver overlay \
  tag "$(podman --root "$bench/podman" --runroot "$bench/podman-run" --storage-driver overlay images -q | head -n1)" bench/busybox:latest
umoci unpack --image "$bench/layout:latest" "$bench/bundle" >/dev/null
jq '.process.args = ["true"] | .process.terminal = false' "$bench/bundle/config.json" >"$bench/config.json"
mv "$bench/config.json" "$bench/bundle/config.json"
# umoci's spec is minimal (no seccomp, 3 capabilities, no cgroup limits). For the
# same container, crun also runs coracle's own spec: a kept container's config.json
# pointed at the unpacked rootfs.
"$coracle" --root "$bench/coracle" run --name spec-source --network none bench/busybox true
spec_dir=$(ls -d "$bench"/coracle/containers/*)
mkdir -p "$bench/same"
# The kept container's network namespace went with it: crun makes a new one.
jq --arg root "$bench/bundle/rootfs" '.root.path = $root
  | .linux.namespaces |= map(if .type == "network" then del(.path) else . end)' \
  "$spec_dir/config.json" >"$bench/same/config.json"

hyperfine -N --runs "$runs" --warmup 3 --export-json "$bench/run.json" \
  -n coracle "$coracle --root $bench/coracle run --rm --network none bench/busybox true" \
  -n crun "crun run -b $bench/bundle bench-crun" \
  -n crun-same-spec "crun run -b $bench/same bench-crun-same" \
  -n podman "podman --root $bench/podman --runroot $bench/podman-run --storage-driver overlay run --rm --network=none bench/busybox true"
jq -r '.results | (map(select(.command=="coracle"))[0].mean) as $c |
  .[] | "\(.command): \(.mean*1000*10|floor/10) ms  coracle/\(.command) = \(($c/.mean*100|floor)/100)"' "$bench/run.json"
