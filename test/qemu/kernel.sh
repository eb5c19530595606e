#!/usr/bin/env bash
# Prints the path of a Debian bookworm 6.1 kernel and the directory of the
# modules the guest needs, downloading the linux-image package once into a
# cache outside the repository (NETTRACE_QEMU_CACHE, default
# /var/cache/nettrace-qemu) and reusing it after.
#   usage: kernel.sh            -> "<vmlinuz> <module dir>" on stdout
set -euo pipefail

cache=${NETTRACE_QEMU_CACHE:-/var/cache/nettrace-qemu}
# 9p over virtio-pci, in load order (their modinfo "depends=" chains)
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p)

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# the kernel linux-image-amd64 points at now; a cached one if apt knows none
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.[0-9]*-[0-9]*-amd64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
  pkg=$(ls "$cache" | grep -E '^linux-image-6\.1\.' | sort -V | tail -1 || true)
  [ -n "$pkg" ] || { echo "kernel.sh: apt knows no linux-image-amd64 6.1 package and none is cached" >&2; exit 1; }
fi
release=${pkg#linux-image-}
dir=$cache/$pkg

if [ ! -f "$dir/vmlinuz" ]; then
  work=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # the unsigned image is the same kernel without the Secure Boot signature
  (cd "$work" && apt-get download -qq "$pkg-unsigned" 2>/dev/null || apt-get download -qq "$pkg") >&2
  dpkg-deb -x "$work"/*.deb "$work/x"
  mkdir -p "$work/out/modules"
  cp "$work/x/boot/vmlinuz-$release" "$work/out/vmlinuz"
  for m in "${modules[@]}"; do
    f=$(find "$work/x/lib/modules/$release" -name "$m.ko" -print -quit)
    [ -n "$f" ] || { echo "kernel.sh: $pkg has no module $m" >&2; exit 1; }
    cp "$f" "$work/out/modules/"
  done
  printf '%s\n' "${modules[@]}" > "$work/out/modules/order"
  rm -rf "$dir"
  mv "$work/out" "$dir"
fi
echo "$dir/vmlinuz $dir/modules"
