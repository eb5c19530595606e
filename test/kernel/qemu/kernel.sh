#!/usr/bin/env bash
# Prints the path of a Debian kernel of the given series and the directory of
# the modules the guest needs, downloading its linux-image package once into a
# cache outside the repository (NETTRACE_QEMU_CACHE, default
# /var/cache/nettrace-qemu) and reusing it after.
#   usage: kernel.sh SERIES     -> "<vmlinuz> <module dir>" on stdout
#   SERIES: 5.10 (bullseye), 6.1 (bookworm) or 6.12 (bookworm-backports)
set -euo pipefail

series=${1:?usage: kernel.sh 5.10|6.1|6.12}
# linux-image-amd64 of the newest of these suites points at the kernel
case $series in
  5.10) sources=("debian bullseye" "debian-security bullseye-security") ;;
  6.1) sources=("debian bookworm" "debian-security bookworm-security") ;;
  6.12) sources=("debian bookworm-backports") ;;
  *) echo "kernel.sh: unknown kernel series $series (5.10, 6.1 or 6.12)" >&2; exit 2 ;;
esac
cache=${NETTRACE_QEMU_CACHE:-/var/cache/nettrace-qemu}
# 9p over virtio-pci; what they depend on is read from each module
targets=(virtio_pci 9pnet_virtio 9p)
prefix="linux-image-${series//./\\.}\."

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

pkg=$(ls "$cache" | grep -E "^$prefix" | sort -V | tail -1 || true)
[ -z "$pkg" ] || [ ! -f "$cache/$pkg/vmlinuz" ] || { echo "$cache/$pkg/vmlinuz $cache/$pkg/modules"; exit 0; }

work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt with a sources list and package lists of its own, so the host's apt stays as it is
mkdir -p "$work/lists/partial" "$work/apt/archives/partial"
for s in "${sources[@]}"; do echo "deb http://deb.debian.org/${s% *} ${s#* } main"; done > "$work/sources.list"
apt=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/apt" -o APT::Sandbox::User=root -qq)
apt-get "${apt[@]}" update >&2
pkg=$(apt-cache "${apt[@]}" depends linux-image-amd64 | sed -n "s/^ *Depends: \($prefix[^ ]*-amd64\)$/\1/p" | head -1)
[ -n "$pkg" ] || { echo "kernel.sh: linux-image-amd64 of ${sources[*]} is no $series kernel" >&2; exit 1; }
release=${pkg#linux-image-}
dir=$cache/$pkg

# the unsigned image is the same kernel without the Secure Boot signature
(cd "$work" && { apt-get "${apt[@]}" download "$pkg-unsigned" 2>/dev/null || apt-get "${apt[@]}" download "$pkg"; }) >&2
dpkg-deb -x "$work"/*.deb "$work/x"
mods=$work/x/lib/modules/$release
mkdir -p "$work/out/modules"
cp "$work/x/boot/vmlinuz-$release" "$work/out/vmlinuz"

# copies module $1 (uncompressed, for busybox insmod) after the ones it depends on
add() {
  local m=$1 f d
  grep -qx "$m" "$work/out/modules/order" 2>/dev/null && return
  if grep -qE "/$m\.ko$" "$mods/modules.builtin"; then return; fi
  f=$(find "$mods" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
  [ -n "$f" ] || { echo "kernel.sh: $pkg has no module $m" >&2; exit 1; }
  case $f in *.xz) xz -dc "$f" > "$work/m.ko" ;; *) cp "$f" "$work/m.ko" ;; esac
  for d in $(grep -a -o 'depends=[^[:cntrl:]]*' "$work/m.ko" | head -1 | cut -d= -f2 | tr , ' '); do add "$d"; done
  case $f in *.xz) xz -dc "$f" > "$work/out/modules/$m.ko" ;; *) cp "$f" "$work/out/modules/$m.ko" ;; esac
  echo "$m" >> "$work/out/modules/order"
}
for m in "${targets[@]}"; do add "$m"; done
rm -rf "$dir"
mv "$work/out" "$dir"
echo "$dir/vmlinuz $dir/modules"
