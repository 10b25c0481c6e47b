#!/usr/bin/env bash
# Network benchmark, inside a network namespace this script makes (the host's network
# is not touched):
#  (a) the network's cost: `coracle run --rm IMAGE true` on the default bridge against
#      `--network none`, and against bare `crun run` of the same image (target: bridge
#      <= 3x crun);
#  (b) time from `run -d -p 18080:80 IMAGE httpd` to the first HTTP 200 on
#      127.0.0.1:18080, coracle against podman (target: <= 0.33x podman).
# Needs root, crun, podman, umoci, hyperfine, jq, curl, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/net.sh: run as root" >&2; exit 1; }
for t in crun podman umoci hyperfine jq curl; do
  command -v "$t" >/dev/null || { echo "bench/net.sh: needs $t (apt-get install $t)" >&2; exit 1; }
done
runs=${RUNS:-20}
rounds=${ROUNDS:-10}
cargo build --release --locked -q
coracle=${CARGO_TARGET_DIR:-$PWD/target}/release/coracle

if [ -d /sys/fs/cgroup/unified ] && ! grep -q " /sys/fs/cgroup/hugetlb " /proc/self/mountinfo; then
  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi
conf=/etc/containers/containers.conf
if ! grep -q '^default_ulimits' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' >>"$conf"
fi

bench=/tmp/coracle-bench-net-$$
ns=coracle-bench-net-$$
mkdir -p "$bench"
mount -t tmpfs -o size=2g tmpfs "$bench"
# podman's default network is 10.88.0.0/16 too: each engine gets a namespace of its own.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns add "$ns-podman"
ip -n "$ns-podman" link set lo up
# `in_ns ENGINE ARGS...` runs ARGS in ENGINE's namespace; `in_ns ENGINE -- CMD...`
# runs another command there.
in_ns() {
  local n=$ns
  [ "$1" = podman ] && n=$ns-podman
  [ "${2:-}" = -- ] && shift 2
  nsenter --net="/run/netns/$n" "$@"
}
C="$coracle --root $bench/coracle"
P="podman --root $bench/podman --runroot $bench/podman-run --storage-driver overlay"
cleanup() {
  in_ns $C rm -f -v bench-web >/dev/null 2>&1 || true
  in_ns $P rm -f bench-web >/dev/null 2>&1 || true
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$ns-podman" 2>/dev/null || true
  umount -R "$bench" 2>/dev/null || umount -l "$bench"
  rmdir "$bench"
}
trap cleanup EXIT

scripts/make-busybox-image.sh "$bench/layout" bench/busybox:latest >/dev/null
$C load -q -i "$bench/layout"
$P pull -q "oci:$bench/layout:latest" >/dev/null
$P tag "$($P images -q | head -n1)" bench/busybox:latest
umoci unpack --image "$bench/layout:latest" "$bench/bundle" >/dev/null
jq '.process.args = ["true"] | .process.terminal = false' "$bench/bundle/config.json" >"$bench/config.json"
mv "$bench/config.json" "$bench/bundle/config.json"

# umoci's spec is minimal (no seccomp, 3 capabilities); crun also runs coracle's own
# spec (a kept container's config.json pointed at the unpacked rootfs).
in_ns $C run --name spec-source --network none bench/busybox true
spec_dir=$(ls -d "$bench"/coracle/containers/*)
mkdir -p "$bench/same"
jq --arg root "$bench/bundle/rootfs" '.root.path = $root' "$spec_dir/config.json" >"$bench/same/config.json"
in_ns $C rm spec-source >/dev/null

echo "== (a) run --rm true: default bridge vs --network none vs bare crun (in netns $ns)"
# One bridged run first: the bridge is made once per network, as docker0 is.
in_ns $C run --rm bench/busybox true
hyperfine -N --runs "$runs" --warmup 3 --export-json "$bench/a.json" \
  -n bridge "nsenter --net=/run/netns/$ns $C run --rm bench/busybox true" \
  -n none "nsenter --net=/run/netns/$ns $C run --rm --network none bench/busybox true" \
  -n crun "nsenter --net=/run/netns/$ns crun run -b $bench/bundle bench-crun" \
  -n crun-same-spec "nsenter --net=/run/netns/$ns crun run -b $bench/same bench-crun-same" >/dev/null
jq -r '.results | (map(select(.command=="bridge"))[0].mean) as $b |
  .[] | "\(.command): \(.mean*1000*10|floor/10) ms  bridge/\(.command) = \(($b/.mean*100|floor)/100)"' "$bench/a.json"

# Milliseconds from starting `run -d -p 18080:80` to the first HTTP 200.
first_response() {
  local start now code
  start=$(date +%s%N)
  in_ns "$@" run -d --name bench-web -p 18080:80 bench/busybox \
    sh -c 'mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
  while :; do
    code=$(in_ns "$1" -- curl -s -o /dev/null -w '%{http_code}' --max-time 1 http://127.0.0.1:18080/ || true)
    [ "$code" = 200 ] && break
    now=$(date +%s%N)
    [ $(((now - start) / 1000000)) -lt 30000 ] || { echo "no HTTP 200 after 30 s" >&2; exit 1; }
  done
  now=$(date +%s%N)
  echo $(((now - start) / 1000000))
  in_ns "$@" rm -f bench-web >/dev/null
}
echo "== (b) run -d -p 18080:80 httpd to the first HTTP 200 on 127.0.0.1:18080 ($rounds rounds)"
total_c=0; total_p=0
first_response $C >/dev/null; first_response $P >/dev/null   # warm-up
for _ in $(seq "$rounds"); do
  total_c=$((total_c + $(first_response $C)))
  total_p=$((total_p + $(first_response $P)))
done
mean_c=$((total_c / rounds)); mean_p=$((total_p / rounds))
echo "coracle: $mean_c ms  podman: $mean_p ms  coracle/podman = $(awk -v c="$mean_c" -v p="$mean_p" 'BEGIN{printf "%.2f", c/p}')"
