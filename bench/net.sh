#!/usr/bin/env bash
# Networking benchmark, inside network namespaces this script creates, one per engine
# (so their bridges and firewall rules stay off the host, and apart: podman's default
# network is 10.88.0.0/16 too):
#  1. `coracle run --rm IMAGE true` on the default bridge against `--network none` and
#     bare `crun run` (umoci's bundle and coracle's own spec, as bench/run.sh), hyperfine;
#  2. time from `run -d -p 18080:80 IMAGE httpd` to the first HTTP 200 on
#     127.0.0.1:18080, coracle against `podman run -d -p 18080:80`, ROUNDS rounds each.
# Needs root, crun, podman, umoci, hyperfine, jq, curl, busybox-static.
#
# Commands enter the namespace with `nsenter --net` only: `ip netns exec` would also
# give them a private mount namespace, and the overlays the monitors mount must stay
# visible to the next command. Peers need the two host fixes of bench/run.sh (a v1
# hugetlb mount for crun, default_ulimits for podman); both applied idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/net.sh: run as root" >&2; exit 1; }
for t in crun podman umoci hyperfine jq curl nsenter; do
  command -v "$t" >/dev/null || { echo "bench/net.sh: needs $t (apt-get install $t)" >&2; exit 1; }
done
runs=${RUNS:-20}
rounds=${ROUNDS:-10}
port=18080
cargo build --release --locked -q
coracle=${CARGO_TARGET_DIR:-$PWD/target}/release/coracle

. bench/peer-fixes.sh

bench=/tmp/coracle-bench-net-$$
mkdir -p "$bench"
mount -t tmpfs -o size=2g tmpfs "$bench"
for ns in "coracle-bench-net-$$" "podman-bench-net-$$"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
IN=(nsenter "--net=/run/netns/coracle-bench-net-$$")
IN_P=(nsenter "--net=/run/netns/podman-bench-net-$$")
C=("$coracle" --root "$bench/coracle")
P=(podman --root "$bench/podman" --runroot "$bench/podman-run" --storage-driver overlay)
cleanup() {
  # Only what this script started: its own stores' containers, by id.
  "${IN[@]}" "${C[@]}" ps -aq --no-trunc 2>/dev/null | xargs -r "${IN[@]}" "${C[@]}" rm -f >/dev/null 2>&1 || true
  "${IN_P[@]}" "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  ip netns del "coracle-bench-net-$$" 2>/dev/null || true
  ip netns del "podman-bench-net-$$" 2>/dev/null || true
  umount -R "$bench" 2>/dev/null || umount -l "$bench"
  rmdir "$bench"
}
trap cleanup EXIT

scripts/make-busybox-image.sh "$bench/layout" bench/busybox:latest >/dev/null
"${C[@]}" load -q -i "$bench/layout" >/dev/null
"${P[@]}" pull -q "oci:$bench/layout:latest" >/dev/null
"${P[@]}" tag "$("${P[@]}" images -q | head -n1)" bench/busybox:latest
umoci unpack --image "$bench/layout:latest" "$bench/bundle" >/dev/null
jq '.process.args = ["true"] | .process.terminal = false' "$bench/bundle/config.json" >"$bench/config.json"
mv "$bench/config.json" "$bench/bundle/config.json"
# crun on coracle's own spec (seccomp, capabilities, masked paths, cgroup) too, as
# bench/run.sh: a kept container's config.json pointed at the unpacked rootfs (kept:
# the spec bind-mounts its hosts, hostname and resolv.conf files).
"${IN[@]}" "${C[@]}" run --name spec-source --network none bench/busybox true
spec_dir=$(ls -d "$bench"/coracle/containers/*)
mkdir -p "$bench/same"
# The kept container's network namespace went with it: crun makes a new one.
jq --arg root "$bench/bundle/rootfs" '.root.path = $root
  | .linux.namespaces |= map(if .type == "network" then del(.path) else . end)' \
  "$spec_dir/config.json" >"$bench/same/config.json"

# --- 1. start latency on the default bridge ---------------------------------------
echo "== run --rm true: default bridge vs --network none vs crun ($runs runs)"
"${IN[@]}" hyperfine -N --runs "$runs" --warmup 3 --export-json "$bench/start.json" \
  -n bridge "${C[*]} run --rm bench/busybox true" \
  -n none "${C[*]} run --rm --network none bench/busybox true" \
  -n crun "crun run -b $bench/bundle bench-crun-net-$$" \
  -n crun-same-spec "crun run -b $bench/same bench-crun-same-net-$$" >/dev/null
jq -r '.results | (map(select(.command=="bridge"))[0].mean) as $b |
  .[] | "\(.command): \(.mean*1000*10|floor/10) ms  bridge/\(.command) = \(($b/.mean*100|floor)/100)"' "$bench/start.json"

# --- 2. run -d -p to the first HTTP 200 ------------------------------------------------
web='mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www'
# Milliseconds from `run -d` to the first 200 on 127.0.0.1:$port (the poll starts when
# `run -d` returns, as a user's script would); $1 and $2 name the arrays of the
# namespace prefix and the engine command.
first_200() {
  local -n inside=$1 engine=$2
  local name=$3 t0 t1 code
  t0=$EPOCHREALTIME
  "${inside[@]}" "${engine[@]}" run -d --name "$name" -p "$port:80" bench/busybox sh -c "$web" >/dev/null
  for _ in $(seq 1000); do
    code=$("${inside[@]}" curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/" || true)
    [ "$code" = 200 ] && break
  done
  t1=$EPOCHREALTIME
  [ "$code" = 200 ] || { echo "bench/net.sh: $name never answered" >&2; exit 1; }
  echo "$t0 $t1" | awk '{printf "%.1f\n", ($2-$1)*1000}'
}
echo "== run -d -p $port:80 httpd to the first HTTP 200 ($rounds rounds)"
: >"$bench/coracle.ms"
: >"$bench/podman.ms"
for i in $(seq "$rounds"); do
  first_200 IN C "web$i" >>"$bench/coracle.ms"
  "${IN[@]}" "${C[@]}" rm -f "web$i" >/dev/null
  first_200 IN_P P "web$i" >>"$bench/podman.ms"
  "${IN_P[@]}" "${P[@]}" rm -f -t 0 "web$i" >/dev/null
done
c_ms=$(awk '{s+=$1} END{printf "%.1f", s/NR}' "$bench/coracle.ms")
p_ms=$(awk '{s+=$1} END{printf "%.1f", s/NR}' "$bench/podman.ms")
echo "coracle: $c_ms ms  (rounds: $(tr '\n' ' ' <"$bench/coracle.ms"))"
echo "podman: $p_ms ms  (rounds: $(tr '\n' ' ' <"$bench/podman.ms"))"
echo "coracle/podman = $(echo "$c_ms $p_ms" | awk '{printf "%.2f", $1/$2}')"
