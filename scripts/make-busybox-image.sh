#!/usr/bin/env bash
# Build a small OCI image layout from Debian's busybox-static: the image demos and
# benchmarks start from, since Docker Hub is out of reach.
# Usage: make-busybox-image.sh OUT_DIR [NAME:TAG]   (prints the manifest digest)
set -euo pipefail
out=${1:?usage: make-busybox-image.sh OUT_DIR [NAME:TAG]}
name=${2:-busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "no $busybox: install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,root,proc,sys,dev,var,usr/bin}
install -d -m 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

"$(dirname "$0")/make-oci-image.sh" "$out" "$name" "$root" -- \
  '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}'
