#!/usr/bin/env bash
# Installs what nettrace needs on a fresh Debian machine and builds it; with --test, also what the tests use.
# Safe to run again: it installs only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "run as root: nettrace loads BPF programs, and installing packages needs root too"
  exit 1
fi

# libelf/zlib/pkg-config build the vendored libbpf; clang/llvm and libbpf-dev (bpf_helpers.h) rebuild bpf/*.bpf.o;
# bpftool, iproute2 and gcc are used by the tests; iptables makes the NAT test's router and conntrack checks what it translated.
packages=(build-essential pkg-config libbpf-dev libelf-dev zlib1g-dev clang llvm bpftool iproute2 util-linux tmux iptables conntrack)
if [ "${1:-}" = "--test" ]; then
  # test/kernel/qemu.test.ts boots Debian's 6.1 and 6.12 kernels under qemu with a busybox initramfs (xz unpacks 6.12's
  # modules); test/kernel/prometheus.test.ts
  # runs a real Prometheus (and test/unit/alerts.test.ts its promtool); test/unit/deploy.test.ts verifies the systemd unit with systemd-analyze
  packages+=(qemu-system-x86 busybox-static xz-utils prometheus systemd)
  # test/kernel/package.test.ts runs `npm run package`: the portable addon builds libelf from source (autotools, flex,
  # bison, gawk), the .deb gets a man page from help2man, and a fresh Debian root comes from debootstrap
  packages+=(autoconf automake autopoint libtool flex bison gawk help2man dpkg-dev debootstrap)
  # test/kernel/dns.test.ts serves a zone with dnsmasq and asks it with dig
  packages+=(dnsmasq-base bind9-dnsutils)
elif [ -n "${1:-}" ]; then
  say "unknown option '$1' (the only one is --test)"
  exit 2
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v node >/dev/null || { say "Node.js 20 or later is needed (apt-get install nodejs npm)"; exit 1; }
if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    say "Rust (cargo) is needed to build the addon: install it with rustup, or apt-get install cargo"
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  # not `npm ci`: npm 11's lock leaves out optional platform packages of @napi-rs/cli's
  # dependencies and then refuses its own lock; install still keeps the locked versions
  npm install --no-audit --no-fund --loglevel=error
fi

say "building the addon and the TypeScript"
npm run --silent build >/dev/null

if [ "${1:-}" = "--test" ]; then
  # test/kernel/fleet.test.ts pushes to a real OpenTelemetry Collector, built once from the upstream Go modules (minutes)
  # and cached outside the repository
  say "building the test OpenTelemetry Collector (once; cached in /var/cache/nettrace-otelcol)"
  bash scripts/otelcol/build.sh >/dev/null
  # CI regenerates the addon's skeleton to compare it (npm run gen:skel -- --check), formatted by rustfmt
  if ! command -v rustfmt >/dev/null; then
    say "installing rustfmt"
    if command -v rustup >/dev/null; then rustup component add rustfmt >/dev/null; else
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rustfmt >/dev/null; fi
  fi
fi
