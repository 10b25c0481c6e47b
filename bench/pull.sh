#!/usr/bin/env bash
# Pull benchmark: coracle against podman and skopeo+umoci, from a local registry into
# empty stores on a tmpfs, in one hyperfine run per image. Prints each tool's mean and
# coracle's ratio to the others (< 1 means coracle is faster).
# Images: "one" = a single ~50 MB (gzip) layer; "five" = five layers, ~250 MB in all.
# Needs root, podman, skopeo, umoci, hyperfine, docker-registry, python3, jq.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/pull.sh: run as root" >&2; exit 1; }
for t in podman skopeo umoci hyperfine docker-registry jq; do
  command -v "$t" >/dev/null || { echo "bench/pull.sh: needs $t (apt-get install $t)" >&2; exit 1; }
done
runs=${RUNS:-5}
cargo build --release --locked -q
coracle=${CARGO_TARGET_DIR:-$PWD/target}/release/coracle

bench=$(mktemp -d /tmp/coracle-bench.XXXXXX)
mount -t tmpfs -o size=6g tmpfs "$bench"
registry_pid=
cleanup() {
  # `wait` reports the registry's SIGTERM status: not an error here (set -e).
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  umount -R "$bench" 2>/dev/null || umount -l "$bench"
  rmdir "$bench"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$bench/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $bench/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$bench/registry.yml" >"$bench/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
reg=127.0.0.1:$port

echo "== building images"
bench/make-payload.sh "$bench/src/one" 50 1
scripts/make-oci-image.sh "$bench/layout-one" bench/one:latest "$bench/src/one" >/dev/null
five=()
for i in 1 2 3 4 5; do
  bench/make-payload.sh "$bench/src/five-$i" 60 "$((i + 10))"
  five+=("$bench/src/five-$i")
done
scripts/make-oci-image.sh "$bench/layout-five" bench/five:latest "${five[@]}" >/dev/null
for img in one five; do
  skopeo copy -q --dest-tls-verify=false "oci:$bench/layout-$img:latest" "docker://$reg/bench/$img:latest"
done
rm -rf "$bench/src" "$bench"/layout-*
du -sh "$bench/registry"

s=$bench/stores
for img in one five; do
  ref=$reg/bench/$img:latest
  echo "== pull $img"
  hyperfine --runs "$runs" --warmup 1 --export-json "$bench/$img.json" \
    --prepare "rm -rf $s; mkdir -p $s" \
    -n coracle "$coracle --root $s/coracle pull -q $ref" \
    -n podman "podman --root $s/podman --runroot $s/podman-run --storage-driver overlay pull -q --tls-verify=false $ref" \
    -n skopeo+umoci "skopeo copy -q --src-tls-verify=false docker://$ref oci:$s/oci:latest && umoci unpack --image $s/oci:latest $s/bundle"
  jq -r '.results | (map(select(.command=="coracle"))[0].mean) as $c |
    .[] | "\(.command): \(.mean*1000|floor) ms  coracle/\(.command) = \(($c/.mean*100|floor)/100)"' "$bench/$img.json"
done
