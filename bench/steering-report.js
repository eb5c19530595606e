// Medians of bench/steering.sh's rounds: throughput, packet rate, each traced
// rate against its own round's untraced one, and the steering hooks' BPF time.
const fs = require('node:fs');

const [metaFile, runsFile, outFile] = process.argv.slice(2);
const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
const runs = fs.readFileSync(runsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
fs.writeFileSync(outFile, JSON.stringify({ meta, runs }, null, 1) + '\n');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const span = (xs, f) => `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
const base = new Map(runs.filter((r) => r.variant === 'untraced').map((r) => [r.round, r]));
const rows = [];
for (const variant of [...new Set(runs.map((r) => r.variant))]) {
  const rs = runs.filter((r) => r.variant === variant);
  const vs = rs.filter((r) => base.has(r.round)).map((r) => r.gbps / base.get(r.round).gbps);
  const steerNs = rs.filter((r) => r.steering_bpf.runs > 0);
  rows.push([
    variant,
    span(rs.map((r) => r.gbps), (x) => x.toFixed(2)),
    span(rs.map((r) => r.pps / 1000), (x) => x.toFixed(0)),
    variant === 'untraced' ? '1×' : vs.length ? span(vs, (x) => `${x.toFixed(2)}×`) : '–',
    steerNs.length ? median(steerNs.map((r) => r.steering_bpf.ns / r.steering_bpf.runs)).toFixed(0) : '–',
    steerNs.length ? median(steerNs.map((r) => r.steering_bpf.ns / r.packets)).toFixed(0) : '–',
    variant === 'untraced' || !rs.some((r) => r.other_bpf.runs > 0) ? '–' : median(rs.filter((r) => r.other_bpf.runs > 0).map((r) => r.other_bpf.ns / r.packets)).toFixed(0),
    variant === 'untraced' ? '–' : String(rs.reduce((a, r) => a + (r.tracer?.drops ?? 0), 0)),
  ]);
}
const header = ['variant', 'Gbit/s', 'kpackets/s', 'vs untraced', 'steer ns/run', 'steer ns/packet', 'other BPF ns/packet', 'drops'];
console.log(`${meta.date}, kernel ${meta.kernel}, ${meta.cpus} CPUs, gso_max_size ${meta.gso_max_size}, rps_cpus ${meta.rps_cpus}, ${meta.rounds} rounds × ${meta.seconds_per_round} s, load average at the end ${meta.loadavg_at_end}, medians [min–max]`);
console.log(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
