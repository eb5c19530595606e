#!/usr/bin/env bash
# npm run package: what installs with no toolchain, into release/ (gitignored):
#   nettrace-V.tgz            the npm package: the portable addons (scripts/build-portable.sh) and its dependencies
#                             inside, so `npm install -g` needs no compiler and no registry
#   nettrace                  one executable: Node's own binary carrying the bundled JavaScript and the addons
#                             (a Node single executable application)
#   nettrace_V_amd64.deb      that executable in /usr/bin, the systemd unit, a man page made from --help
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'package: %s\n' "$*" >&2; }

version=$(node -p 'require("./package.json").version')
stage=release/stage
rm -rf release && mkdir -p "$stage"

say "npm tarball (prepack builds the portable addon and dist/)"
npm pack --pack-destination release --silent >/dev/null

say "single executable"
# The SEA's require() reaches only Node's built-in modules: everything else is bundled into one script.
npx esbuild scripts/sea-main.js --bundle --platform=node --target=node20 --minify --log-level=error \
  --outfile="$stage/sea.js"
cat >"$stage/sea-config.json" <<JSON
{
  "main": "$stage/sea.js",
  "output": "$stage/sea.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true,
  "assets": {
    "nettrace.node": "native/nettrace.linux-x64-gnu.node",
    "nettrace-churn.node": "native/churn/nettrace-churn.linux-x64-gnu.node"
  }
}
JSON
node --experimental-sea-config "$stage/sea-config.json" >"$stage/sea.log" 2>&1 || { cat "$stage/sea.log" >&2; exit 1; }
cp "$(node -p process.execPath)" release/nettrace
chmod u+w release/nettrace
strip --strip-all release/nettrace # the Node binary's debug info is most of its size
npx postject release/nettrace NODE_SEA_BLOB "$stage/sea.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >"$stage/postject.log" 2>&1 ||
  { cat "$stage/postject.log" >&2; exit 1; } # on success it only warns about Node's many ELF notes

say "Debian package"
deb=$stage/deb
install -D -m 0755 release/nettrace "$deb/usr/bin/nettrace"
install -D -m 0644 LICENSE "$deb/usr/share/doc/nettrace/copyright"
# the unit the repository ships, started from the packaged executable
mkdir -p "$deb/lib/systemd/system"
sed -e 's|^ExecStart=.*nettrace.js serve|ExecStart=/usr/bin/nettrace serve|' \
  -e '/^# Install nettrace under/,/^# \/etc\/systemd\/system\//c\# Installed by the nettrace package: systemctl enable --now nettrace' \
  deploy/nettrace.service >"$deb/lib/systemd/system/nettrace.service"
grep -q '^ExecStart=/usr/bin/nettrace serve' "$deb/lib/systemd/system/nettrace.service" ||
  { say "deploy/nettrace.service: its ExecStart line changed; update scripts/package.sh"; exit 1; }
mkdir -p "$deb/usr/share/man/man1"
help2man --no-info --version-string="$version" --name="eBPF socket tracer: every TCP and UDP socket, attributed to its process" \
  "$deb/usr/bin/nettrace" | gzip -9n >"$deb/usr/share/man/man1/nettrace.1.gz"
# Depends as dpkg-shlibdeps reads it off the executable's ELF NEEDED entries
mkdir -p "$stage/debian" && printf 'Source: nettrace\n\nPackage: nettrace\nArchitecture: amd64\n' >"$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e deb/usr/bin/nettrace 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
mkdir -p "$deb/DEBIAN"
cat >"$deb/DEBIAN/control" <<CONTROL
Package: nettrace
Version: $version
Architecture: amd64
Maintainer: nettrace developers <nettrace@localhost>
Depends: $depends
Section: net
Priority: optional
Installed-Size: $(du -sk "$deb" --exclude=DEBIAN | cut -f1)
Description: eBPF socket tracer
 Every TCP connect, accept, state change and close, and every UDP socket's
 lifetime and traffic, each attributed to the process that owns the socket;
 flows, states, routes and receive steering, Prometheus metrics and OTLP.
 One self-contained executable: no Node.js, libbpf or libelf needed.
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$deb" "release/nettrace_${version}_amd64.deb" >/dev/null
rm -rf "$stage"
ls -l release >&2
