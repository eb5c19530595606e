#!/usr/bin/env bash
# Builds the test Collector (builder.yaml) once into a cache outside the repository and prints its path;
# a later run with the same builder.yaml reuses it. The Go module and build caches live there too, so a
# rebuild after a change fetches and compiles only what changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${NETTRACE_OTELCOL_CACHE:-/var/cache/nettrace-otelcol}"
key="$(sha256sum "$here/builder.yaml" | cut -c1-16)"
out="$cache/otelcol-$key"
if [ -x "$out/otelcol" ]; then
  echo "$out/otelcol"
  exit 0
fi
# the Go distribution's own place, where it is installed but not on PATH
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "otelcol: Go 1.24 or later is needed to build the test Collector (apt-get install golang)" >&2; exit 1; }
mkdir -p "$cache"
export GOMODCACHE="$cache/gomod" GOCACHE="$cache/gobuild" GOFLAGS=-buildvcs=false
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
sed "/^dist:/a\\  output_path: $work/src" "$here/builder.yaml" > "$work/builder.yaml"
start=$(date +%s)
# nice: the build takes the machine's cores for minutes, and tests or other work may share them
nice -n 10 go run go.opentelemetry.io/collector/cmd/builder@v0.165.0 --config="$work/builder.yaml" >"$work/build.log" 2>&1 || {
  tail -n 30 "$work/build.log" >&2
  echo "otelcol: the Collector build failed" >&2
  exit 1
}
mkdir -p "$out.tmp"
mv "$work/src/otelcol" "$out.tmp/otelcol"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "otelcol: built in $(( $(date +%s) - start )) s" >&2
echo "$out/otelcol"
