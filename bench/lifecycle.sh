#!/usr/bin/env bash
# Container lifecycle benchmark, coracle against podman in one run:
#  1. memory of the per-container monitor: coracle's monitor vs podman's conmon, for
#     N running containers (VmRSS, anonymous RSS, and PSS: the cost each extra
#     container adds once the binary's pages are shared);
#  2. `ps -a` with 1000 created containers (target <= 20 ms);
#  3. a `run -d` + `rm -f` cycle.
# Needs root, podman, hyperfine, jq, busybox-static. Stores live on a tmpfs.
#
# podman needs default_ulimits within the hard RLIMIT_NOFILE on this machine (and
# crun, its runtime, a v1 hugetlb hierarchy on hybrid cgroups); both host fixes are
# applied here, idempotently. coracle needs neither.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/lifecycle.sh: run as root" >&2; exit 1; }
for t in podman hyperfine jq; do
  command -v "$t" >/dev/null || { echo "bench/lifecycle.sh: needs $t (apt-get install $t)" >&2; exit 1; }
done
running=${RUNNING:-10}
created=${CREATED:-1000}
runs=${RUNS:-20}
cargo build --release --locked -q
coracle=${CARGO_TARGET_DIR:-$PWD/target}/release/coracle

. bench/peer-fixes.sh

bench=/tmp/coracle-bench-lifecycle-$$
mkdir -p "$bench"
mount -t tmpfs -o size=4g tmpfs "$bench"
C=("$coracle" --root "$bench/coracle")
P=(podman --root "$bench/podman" --runroot "$bench/podman-run" --storage-driver overlay)
cleanup() {
  # Only what this script started: its own stores' containers, by id.
  "${C[@]}" ps -aq --no-trunc 2>/dev/null | xargs -r "${C[@]}" rm -f >/dev/null 2>&1 || true
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  umount -R "$bench" 2>/dev/null || umount -l "$bench"
  rmdir "$bench"
}
trap cleanup EXIT

scripts/make-busybox-image.sh "$bench/layout" bench/busybox:latest >/dev/null
"${C[@]}" load -q -i "$bench/layout" >/dev/null
"${P[@]}" pull -q "oci:$bench/layout:latest" >/dev/null
"${P[@]}" tag "$("${P[@]}" images -q | head -n1)" bench/busybox:latest

# --- 1. monitor memory -----------------------------------------------------------
# kB fields of one process: VmRSS, RssAnon, Pss (smaps_rollup).
mem_of() {
  local pid=$1
  awk '/^VmRSS:/{r=$2} /^RssAnon:/{a=$2} END{printf "%s %s ", r, a}' "/proc/$pid/status"
  awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup"
}
monitor_pid() { # the coracle monitor of container $1
  grep -l -a -- "$1" /proc/[0-9]*/cmdline 2>/dev/null |
    while read -r f; do
      tr "\0" " " <"$f" 2>/dev/null | grep -q "__monitor $1" && { f=${f#/proc/}; echo "${f%/cmdline}"; }
    done | head -n1
}
summary() { # name, then lines of "rss anon pss"
  awk -v n="$1" '{r+=$1; a+=$2; p+=$3; c++} END{printf "%-8s monitor x%d: VmRSS %.0f KiB, RssAnon %.0f KiB, PSS %.0f KiB (means)\n", n, c, r/c, a/c, p/c}'
}
for i in $(seq "$running"); do
  "${C[@]}" run -d --network none --name "mem$i" bench/busybox sleep 1000 >/dev/null
  "${P[@]}" run -d --network none --name "mem$i" bench/busybox sleep 1000 >/dev/null
done
sleep 1
coracle_mem=$(for i in $(seq "$running"); do
  mem_of "$(monitor_pid "$("${C[@]}" ps -q --no-trunc -f "name=^mem$i\$")")"
done)
conmon_mem=$(for i in $(seq "$running"); do
  mem_of "$("${P[@]}" inspect -f '{{.State.ConmonPid}}' "mem$i")"
done)
echo "== monitor memory with $running running containers"
echo "$coracle_mem" | summary coracle
echo "$conmon_mem" | summary conmon
c_anon=$(echo "$coracle_mem" | awk '{a+=$2; c++} END{print a/c}')
p_anon=$(echo "$conmon_mem" | awk '{a+=$2; c++} END{print a/c}')
c_pss=$(echo "$coracle_mem" | awk '{a+=$3; c++} END{print a/c}')
p_pss=$(echo "$conmon_mem" | awk '{a+=$3; c++} END{print a/c}')
echo "coracle/conmon: anonymous $(echo "$c_anon $p_anon" | awk '{printf "%.2f", $1/$2}'), PSS $(echo "$c_pss $p_pss" | awk '{printf "%.2f", $1/$2}')"
"${C[@]}" ps -aq --no-trunc | xargs -r "${C[@]}" rm -f >/dev/null
"${P[@]}" rm -af -t 0 >/dev/null

# --- 2. ps -a with many created containers -----------------------------------------
echo "== ps -a with $created created containers"
for i in $(seq "$created"); do
  "${C[@]}" create --network none bench/busybox true >/dev/null
done
for i in $(seq "$created"); do
  "${P[@]}" create --network none bench/busybox true >/dev/null
done
hyperfine -N --runs "$runs" --warmup 3 --export-json "$bench/ps.json" \
  -n coracle "${C[*]} ps -a" \
  -n podman "${P[*]} ps -a" >/dev/null
jq -r '.results | (map(select(.command=="coracle"))[0].mean) as $c |
  .[] | "\(.command): \(.mean*1000*10|floor/10) ms  coracle/\(.command) = \(($c/.mean*100|floor)/100)"' "$bench/ps.json"
"${C[@]}" container prune -f >/dev/null
"${P[@]}" container prune -f >/dev/null

# --- 3. run -d + rm -f ---------------------------------------------------------------
echo "== run -d + rm -f cycle"
hyperfine --runs "$runs" --warmup 2 --export-json "$bench/cycle.json" \
  -n coracle "id=\$(${C[*]} run -d --network none bench/busybox sleep 100) && ${C[*]} rm -f \$id >/dev/null" \
  -n podman "id=\$(${P[*]} run -d --network none bench/busybox sleep 100) && ${P[*]} rm -f -t 0 \$id >/dev/null" >/dev/null
jq -r '.results | (map(select(.command=="coracle"))[0].mean) as $c |
  .[] | "\(.command): \(.mean*1000*10|floor/10) ms  coracle/\(.command) = \(($c/.mean*100|floor)/100)"' "$bench/cycle.json"
