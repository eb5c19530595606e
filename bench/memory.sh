#!/usr/bin/env bash
# Memory over a long max-rate loopback churn under nettrace (aggregate mode,
# every transition into the flow table): RSS sampled 4 times a second by
# `nettrace bench churn`, then the least-squares slope over everything after
# the first minute (the flow table and V8's heap fill up first).
#
#   sudo bash bench/memory.sh            (DURATION=600 seconds by default)
# Writes bench/results/memory.json (the bench's JSON plus the fit) and prints
# one line: RSS at 1 min, at the end, peak, and the slope in MiB per minute.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
[[ $EUID -eq 0 ]] || { echo "memory: needs root" >&2; exit 1; }
[[ -f dist/src/index.js ]] || { echo "memory: nettrace is not built: run npm run build" >&2; exit 1; }
mkdir -p bench/results
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
RAW=$(mktemp /tmp/nettrace-memory.XXXXXX)
trap 'rm -f "$RAW"' EXIT
node bin/nettrace.js bench churn --duration "$DURATION" --json >"$RAW"
node - "$RAW" bench/results/memory.json "$LOAD" <<'JS'
const fs = require('node:fs');
const [raw, out, load] = process.argv.slice(2);
const j = JSON.parse(fs.readFileSync(raw, 'utf8'));
const r = j.rounds[0][0];
const pts = r.series.filter((p) => p.t >= Math.min(60, r.seconds / 2));
const n = pts.length;
const mx = pts.reduce((a, p) => a + p.t, 0) / n;
const my = pts.reduce((a, p) => a + p.rssMiB, 0) / n;
const slope = pts.reduce((a, p) => a + (p.t - mx) * (p.rssMiB - my), 0) / pts.reduce((a, p) => a + (p.t - mx) ** 2, 0);
const fit = {
  seconds: r.seconds,
  conns: r.conns,
  rate: r.rate,
  drops: r.drops,
  missed: r.missed,
  rss_first_mib: pts[0].rssMiB,
  rss_end_mib: pts[n - 1].rssMiB,
  rss_peak_mib: Math.max(...r.series.map((p) => p.rssMiB)),
  slope_mib_per_min: slope * 60,
  loadavg_at_start: load,
};
fs.writeFileSync(out, JSON.stringify({ fit, bench: j }) + '\n');
console.log(
  `memory: ${Math.round(r.seconds)} s, ${Math.round(r.rate)} conns/s, drops ${r.drops}, RSS ${fit.rss_first_mib.toFixed(0)} MiB at ` +
    `${pts[0].t.toFixed(0)} s -> ${fit.rss_end_mib.toFixed(0)} MiB at the end (peak ${fit.rss_peak_mib.toFixed(0)}), ` +
    `slope ${fit.slope_mib_per_min.toFixed(3)} MiB/min (load ${load})`,
);
JS
