#!/usr/bin/env bash
# Builds the addons that ship (npm tarball, single executable, .deb) into native/ and native/churn/, in place of
# the ones `npm run build` makes. The tracer's: libbpf, libelf and zlib from libbpf-sys's vendored sources linked
# in statically (the `portable` feature), stripped, compiled and linked by napi-rs's cross toolchain against glibc 2.17, so it
# loads on any x86_64 glibc userland from 2.17 on (RHEL 7/8, Amazon Linux 2, Ubuntu 20.04, Debian 10+) with
# nothing but libc beside it. test/kernel/package.test.ts checks both properties on the built file.
# package.json's overrides pin @napi-rs/cross-toolchain to 1.0.0 (its x86_64 toolchain package has no later
# version) and its @napi-rs/lzma to 1.4.5 (later ones install only on Node 22+).
# Bench's load generator (native/churn/) is built the same way; it links no libbpf, so it needs no feature.
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain's kernel headers are Linux 3.10's (as on CentOS 7), older than libbpf expects: the UAPI headers it
# lacks (linux/bpf_perf_event.h...) come from the build host's linux-libc-dev, searched after the toolchain's own,
# through a directory holding only the kernel's header trees so no newer glibc header can be picked up.
uapi=native/target/kernel-uapi
mkdir -p "$uapi"
ln -sfn /usr/include/linux "$uapi/linux"
ln -sfn /usr/include/asm-generic "$uapi/asm-generic"
ln -sfn "/usr/include/$(gcc -print-multiarch)/asm" "$uapi/asm"
# bpf(2) and memfd_create(2) are called by number (libbpf falls back when the running kernel lacks memfd_create):
# 321 and 319 on x86_64.
export LIBBPF_SYS_EXTRA_CFLAGS="-idirafter $PWD/$uapi -D__NR_bpf=321 -D__NR_memfd_create=319"

npx napi build --platform --release --strip --use-napi-cross --target x86_64-unknown-linux-gnu \
  --features portable --manifest-path native/Cargo.toml --output-dir native --js index.js --dts index.d.ts
npx napi build --platform --release --strip --use-napi-cross --target x86_64-unknown-linux-gnu \
  --manifest-path native/churn/Cargo.toml --package-json-path native/churn/package.json \
  --output-dir native/churn --js index.js --dts index.d.ts
# napi's --strip leaves the local symbol table in; only the dynamic symbols are needed to load them
strip --strip-all native/nettrace.linux-x64-gnu.node native/churn/nettrace-churn.linux-x64-gnu.node
