#!/usr/bin/env bash
# Write an OCI image layout from directories, one gzip layer per directory, with
# coreutils, tar, gzip and jq only. Usage:
#   make-oci-image.sh OUT_DIR NAME:TAG LAYER_DIR... [-- JSON_CONFIG_OBJECT]
# JSON_CONFIG_OBJECT is the image's "config" (Env, Cmd, ...). Prints the manifest digest.
set -euo pipefail
out=${1:?usage: make-oci-image.sh OUT_DIR NAME:TAG LAYER_DIR... [-- CONFIG_JSON]}
name=${2:?usage: make-oci-image.sh OUT_DIR NAME:TAG LAYER_DIR... [-- CONFIG_JSON]}
shift 2
dirs=()
config='{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then config=$2; break; fi
  dirs+=("$1"); shift
done
[ ${#dirs[@]} -gt 0 ] || { echo "make-oci-image.sh: no layer directories" >&2; exit 1; }
tag=${name##*:}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/blobs/sha256"
put_blob() { # file -> prints "digest size", stores the blob
  local d s
  d=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  mv "$1" "$out/blobs/sha256/$d"
  echo "$d $s"
}

diff_ids='[]'
layers='[]'
for dir in "${dirs[@]}"; do
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$work/layer.tar" .
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  gzip -n -6 "$work/layer.tar"
  read -r digest size < <(put_blob "$work/layer.tar.gz")
  diff_ids=$(jq -c --arg d "sha256:$diff_id" '. + [$d]' <<<"$diff_ids")
  layers=$(jq -c --arg d "sha256:$digest" --argjson s "$size" \
    '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' <<<"$layers")
done

arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
jq -cn --arg arch "$arch" --argjson diffs "$diff_ids" --argjson config "$config" '{
  architecture: $arch, os: "linux", created: "2024-01-01T00:00:00Z",
  config: $config, rootfs: {type: "layers", diff_ids: $diffs},
  history: [$diffs[] | {created: "2024-01-01T00:00:00Z", created_by: "make-oci-image.sh"}]
}' >"$work/config.json"
read -r config_digest config_size < <(put_blob "$work/config.json")

jq -cn --arg cd "sha256:$config_digest" --argjson cs "$config_size" --argjson layers "$layers" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
  layers: $layers
}' >"$work/manifest.json"
read -r manifest_digest manifest_size < <(put_blob "$work/manifest.json")

echo '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
jq -n --arg d "sha256:$manifest_digest" --argjson s "$manifest_size" --arg tag "$tag" --arg name "$name" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
               annotations: {"org.opencontainers.image.ref.name": $tag, "io.containerd.image.name": $name}}]
}' >"$out/index.json"
echo "sha256:$manifest_digest"
