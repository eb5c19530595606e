#!/usr/bin/env node
'use strict';
/*
 * Turns bench/run.sh's raw measurements into the summary table and the
 * results file.  usage: node bench/report.js meta.json runs.jsonl out.json
 *
 * Ratios are taken round by round against that round's untraced rate, then
 * summarised; medians, because one disturbed round should not move the result.
 */
const fs = require('node:fs');

const [metaPath, runsPath, outPath] = process.argv.slice(2);
const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
const runs = fs
  .readFileSync(runsPath, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function summary(xs) {
  return xs.length ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) } : null;
}

const untracedRate = new Map(runs.filter((r) => r.variant === 'untraced').map((r) => [r.round, r.churn.rate]));

// Per-run derived numbers, kept next to the raw ones in the results file.
for (const r of runs) {
  const seconds = r.churn.seconds;
  const context = {
    others_cpu_pct: (r.context.others_cpu_ms / 1e3 / seconds) * 100,
    steal_pct: (r.context.steal_ms / 1e3 / seconds) * 100,
    foreign_bpf_ns_per_conn: r.context.foreign_bpf_run_time_ns / r.churn.conns,
  };
  if (r.variant === 'untraced') {
    r.derived = context;
    continue;
  }
  const base = untracedRate.get(r.round);
  r.derived = {
    ...context,
    ratio: base ? r.churn.rate / base : null,
    records_per_conn: r.tracer.records == null ? null : r.tracer.records / r.churn.conns,
    // what the hooks should have delivered but did not: refused by a full
    // buffer (drops) or never run because of recursion (missed)
    lost_pct:
      r.tracer.records == null
        ? null
        : ((r.tracer.drops + r.bpf.recursion_misses) / (r.tracer.records + r.tracer.drops + r.bpf.recursion_misses)) * 100,
    scrape_p50_ms: r.tracer.scrape_ms?.p50 ?? null,
    scrape_p99_ms: r.tracer.scrape_ms?.p99 ?? null,
    bpf_ns_per_run: r.bpf.run_cnt ? r.bpf.run_time_ns / r.bpf.run_cnt : null,
    bpf_ns_per_conn: r.bpf.run_time_ns / r.churn.conns,
    // per record delivered or refused: lifetime runs per record (both counted over the tracer's whole life) times ns per run
    bpf_ns_per_event:
      r.bpf.run_cnt && r.tracer.records != null && r.tracer.records + r.tracer.drops
        ? (r.bpf.run_time_ns / r.bpf.run_cnt) * (r.bpf.run_cnt_lifetime / (r.tracer.records + r.tracer.drops))
        : null,
    bpf_cpu_pct: (r.bpf.run_time_ns / 1e9 / seconds) * 100,
    consumer_cpu_pct: (r.consumer_cpu_ms / 1e3 / seconds) * 100,
  };
}

const variants = [...new Set(runs.map((r) => r.variant))];
const table = variants.map((variant) => {
  const rs = runs.filter((r) => r.variant === variant);
  const pick = (f) => summary(rs.map(f).filter((x) => x !== null && x !== undefined));
  const row = {
    variant,
    rounds: rs.length,
    rate: pick((r) => r.churn.rate),
    others_cpu_pct: pick((r) => r.derived.others_cpu_pct),
    steal_pct: pick((r) => r.derived.steal_pct),
    foreign_bpf_ns_per_conn: pick((r) => r.derived.foreign_bpf_ns_per_conn),
  };
  if (variant !== 'untraced') {
    Object.assign(row, {
      ratio: pick((r) => r.derived.ratio),
      records_per_conn: pick((r) => r.derived.records_per_conn),
      lost_pct: pick((r) => r.derived.lost_pct),
      drops_total: rs.reduce((n, r) => n + r.tracer.drops, 0),
      missed_total: rs.reduce((n, r) => n + r.bpf.recursion_misses, 0),
      bpf_ns_per_run: pick((r) => r.derived.bpf_ns_per_run),
      bpf_ns_per_conn: pick((r) => r.derived.bpf_ns_per_conn),
      bpf_ns_per_event: pick((r) => r.derived.bpf_ns_per_event),
      bpf_cpu_pct: pick((r) => r.derived.bpf_cpu_pct),
      consumer_cpu_pct: pick((r) => r.derived.consumer_cpu_pct),
      scrape_p50_ms: pick((r) => r.derived.scrape_p50_ms),
      scrape_p99_ms: pick((r) => r.derived.scrape_p99_ms),
    });
  }
  return row;
});

fs.writeFileSync(outPath, JSON.stringify({ meta, summary: table, runs }, null, 2) + '\n');

// The table: median, then [min-max] where the spread matters.
const fmt = (s, digits = 0, suffix = '') =>
  s ? `${s.median.toFixed(digits)}${suffix} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]` : '-';
const head = [
  'variant', 'conns/s', 'vs untraced', 'records/conn', 'drops', 'missed', 'lost', 'BPF ns/run', 'BPF ns/event', 'BPF ns/conn',
  'tracer CPU', '/metrics p50/p99 ms', 'others CPU',
];
const rows = table.map((t) => [
  t.variant,
  fmt(t.rate),
  t.ratio ? fmt(t.ratio, 2, 'x') : '1x',
  t.records_per_conn ? t.records_per_conn.median.toFixed(2) : '-',
  t.drops_total ?? '-',
  t.missed_total ?? '-',
  t.lost_pct ? `${t.lost_pct.median.toPrecision(2)}%` : '-',
  t.bpf_ns_per_run ? fmt(t.bpf_ns_per_run) : '-',
  t.bpf_ns_per_event ? t.bpf_ns_per_event.median.toFixed(0) : '-',
  t.bpf_ns_per_conn ? t.bpf_ns_per_conn.median.toFixed(0) : '-',
  t.consumer_cpu_pct ? `${t.consumer_cpu_pct.median.toFixed(1)}%` : '-',
  t.scrape_p99_ms ? `${t.scrape_p50_ms.median.toFixed(1)}/${t.scrape_p99_ms.median.toFixed(1)}` : '-',
  `${t.others_cpu_pct.median.toFixed(1)}% (max ${t.others_cpu_pct.max.toFixed(1)}%)`,
]);
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();

console.log(
  `\n${meta.rounds} rounds x ${meta.seconds_per_round}s, churn ${meta.churn_args}, ` +
    `kernel ${meta.kernel}, ${meta.cpus} CPUs, medians [min-max]`,
);
console.log(line(head));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows) console.log(line(r));
console.log(
  '\ndrops: records the tracer lost for lack of buffer space (nettrace/consumer: the drops map;' +
    '\n  bpftrace: program runs minus lines received). missed: program runs the kernel skipped' +
    '\n  because a BPF program was already running on that CPU (recursion_misses).' +
    '\n  lost: (drops + missed) as a share of everything the hooks should have delivered.' +
    '\nBPF ns: run_time_ns over run_cnt with kernel.bpf_stats_enabled=1, which itself adds a little;' +
    '\n  per event: over the records delivered or refused (nettrace makes several per connect and close).' +
    `\ntracer CPU: the tracer's user-space process during the churn, % of one CPU.` +
    '\n/metrics: serve only, latency of a GET every 250 ms during the churn (median over rounds of each round\'s p50/p99).' +
    '\nrecords/conn: where the tracer reports what it delivered (the consumer, the --json summaries).' +
    `\nothers CPU: every other user-space process meanwhile (someone else's work), % of one CPU.` +
    `\nraw results: ${outPath}`,
);

// Say loudly what makes the numbers less than clean.
const foreign = runs.filter((r) => r.context.foreign_bpf_progs.length);
if (foreign.length) {
  const ns = median(foreign.map((r) => r.derived.foreign_bpf_ns_per_conn));
  console.log(
    `\nWARNING: ${foreign.length}/${runs.length} runs had BPF programs loaded that are not this bench's` +
      ` (ids ${[...new Set(foreign.flatMap((r) => r.context.foreign_bpf_progs))].join(',')}),` +
      ` costing a median ${ns.toFixed(0)} ns of BPF per connection in every variant, untraced included.`,
  );
}
const busy = runs.filter((r) => r.derived.others_cpu_pct > 15);
if (busy.length) {
  console.log(
    `\nWARNING: in ${busy.length}/${runs.length} runs other processes used more than 15% of a CPU` +
      ` (rounds ${[...new Set(busy.map((r) => r.round))].join(',')}); those rates are not clean.`,
  );
}
const steal = median(runs.map((r) => r.derived.steal_pct));
if (steal > 2) console.log(`\nnote: the hypervisor stole a median ${steal.toFixed(1)}% of a CPU during runs.`);
