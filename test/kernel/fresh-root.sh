#!/usr/bin/env bash
# A fresh Debian system for test/kernel/package.test.ts: a minimal bookworm root (debootstrap --variant=minbase: no Node,
# no Rust, no clang, no libelf), cached as a tarball under /var/cache/nettrace-debootstrap and unpacked anew each run.
# It installs one artefact the way a user would, then, chrooted with /proc, /sys, tracefs and the cgroup v2 mount
# bound in, traces a connection a bash inside it makes to PORT on loopback, and lists it while it is open.
#
#   fresh-root.sh deb  release/nettrace_V_amd64.deb  PORT OUTDIR   dpkg -i the package
#   fresh-root.sh npm  release/nettrace-V.tgz        PORT OUTDIR   copy in the node binary (and its npm), npm install -g
#   fresh-root.sh exe  release/nettrace              PORT OUTDIR   copy the single executable alone into /usr/local/bin
# SUITE=bullseye makes and uses a Debian 11 root instead (glibc 2.31, below the build host's 2.36).
#
# OUTDIR receives what ran inside: version.txt, install.log, events.json, flows.json, client.pid, tracer.err, tools.txt.
# Every mount is undone on every exit path; the root is removed only once nothing is mounted under it.
set -euo pipefail
mode=$1 artefact=$(realpath "$2") port=$3 out=$(realpath "$4")
cache=/var/cache/nettrace-debootstrap
suite=${SUITE:-bookworm}
tarball=$cache/$suite-minbase-amd64.tar.gz
say() { printf 'fresh-root: %s\n' "$*" >&2; }

if [ ! -s "$tarball" ]; then
  say "making the cached Debian root $tarball (once)"
  mkdir -p "$cache"
  build=$(mktemp -d "$cache/build.XXXXXX")
  debootstrap --variant=minbase "$suite" "$build" >"$cache/debootstrap-$suite.log" 2>&1 ||
    { say "debootstrap failed, see $cache/debootstrap-$suite.log"; rm -rf --one-file-system "$build"; exit 1; }
  tar -C "$build" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$build"
fi

root=$(mktemp -d /tmp/ntpkg-root.XXXXXX)
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    # shellcheck disable=SC2086 # "-R PATH" is two words on purpose
    umount ${mounted[i]} 2>/dev/null || umount -l ${mounted[i]} || say "cannot unmount ${mounted[i]}"
  done
  if grep -q " $root[/ ]" /proc/mounts; then
    say "left $root in place: something is still mounted under it"
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

tar -C "$root" -xzf "$tarball"
bind() { # bind PATH at the same path inside the root
  if grep -q " $root$1 " /proc/mounts; then return; fi # already there, under /sys
  mkdir -p "$root$1"
  mount --bind --make-rslave "$1" "$root$1"
  mounted+=("$root$1")
}
bind /proc
# /sys with what is mounted under it (tracefs, the cgroup v2 mount and the tmpfs that may hold it), recursively
mkdir -p "$root/sys"
mount --rbind --make-rslave /sys "$root/sys" # slave: unmounting under it must never reach the host's /sys
mounted+=("-R $root/sys")
# wherever else tracefs and the cgroup v2 mount are, as /proc/mounts says
for fs in tracefs cgroup2; do
  where=$(awk -v fs="$fs" '$3 == fs { print $2; exit }' /proc/mounts)
  if [ -z "$where" ]; then say "no $fs mounted on this host"; exit 1; fi
  bind "$where"
done

cp "$artefact" "$root/tmp/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
case $mode in
  deb) in_root dpkg -i "/tmp/$(basename "$artefact")" >"$out/install.log" 2>&1 ;;
  npm)
    node=$(command -v node)
    npm_dir=$(dirname "$(realpath "$node")")/../lib/node_modules/npm
    install -D -m 0755 "$node" "$root/usr/local/bin/node"
    mkdir -p "$root/usr/local/lib/node_modules" && cp -a "$(realpath "$npm_dir")" "$root/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    # --offline: the tarball carries its dependencies; nothing may come from a registry
    in_root npm install -g --offline --no-audit --no-fund "/tmp/$(basename "$artefact")" >"$out/install.log" 2>&1 ;;
  exe) install -m 0755 "$artefact" "$root/usr/local/bin/nettrace" && echo copied >"$out/install.log" ;;
  *) say "unknown mode '$mode'"; exit 2 ;;
esac

in_root /bin/bash -s "$port" >"$out/scenario.log" 2>&1 <<'SCENARIO'
set -eu
port=$1
mkdir -p /tmp/out
for t in node cargo rustc clang cc gcc; do command -v "$t" || true; done >/tmp/out/tools.txt
ls /usr/lib/x86_64-linux-gnu/libelf* /usr/lib/x86_64-linux-gnu/libbpf* 2>/dev/null >>/tmp/out/tools.txt || true
nettrace --version >/tmp/out/version.txt
mkfifo /tmp/go /tmp/done
# The client waits for the go, so the tracer can filter on its pid and is attached before it connects; once
# answered it says so (/tmp/up) and holds the connection until `nettrace flows` has listed it.
bash -c 'read -t 60 -r _ <>/tmp/go; exec 3<>"/dev/tcp/127.0.0.1/$1"; echo hello >&3; read -r -u 3 _
  touch /tmp/up; read -t 60 -r _ <>/tmp/done; exec 3>&-; sleep 0.2' client "$port" &
client=$!
echo "$client" >/tmp/out/client.pid
NETTRACE_KERNEL_IDS=/tmp/ids nettrace --json -c 7 -d 60 -p "$client" >/tmp/out/events.json 2>/tmp/out/tracer.err &
tracer=$!
for _ in $(seq 300); do [ -s /tmp/ids ] && break; kill -0 "$tracer" 2>/dev/null || break; sleep 0.1; done
echo go 1<>/tmp/go # read-write: never blocks, even if the client is gone
for _ in $(seq 300); do [ -e /tmp/up ] && break; sleep 0.1; done
nettrace flows --json -t "dport = :$port" >/tmp/out/flows.json 2>/tmp/out/flows.err || true
echo done 1<>/tmp/done
wait "$client" || true
wait "$tracer" || echo "tracer exit $?" >>/tmp/out/tracer.err
SCENARIO
cp -r "$root/tmp/out/." "$out/"
