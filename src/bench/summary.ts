/** Rounds reduced to what the table and the JSON show: medians with their spread, ratios to untraced. */
import { complete, RoundResult, TraceMode } from './churn';

export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return { min: 0, median: 0, max: 0 };
  const mid = v.length >> 1;
  return { min: v[0], median: v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2, max: v[v.length - 1] };
}

export interface ModeSummary {
  mode: TraceMode;
  rounds: number;
  rate: Spread;
  p50Us: Spread;
  p99Us: Spread;
  maxUs: Spread;
  errors: number;
  /** Every round captured every connect, accept and close (null untraced). */
  complete: boolean | null;
  drops: number | null;
  missed: number | null;
  bpfNsPerEvent: Spread | null;
  bpfNsPerRun: Spread | null;
  onStateNsPerRun: Spread | null;
  tracerCpuPct: Spread;
  rssMiB: Spread;
  /** Per round, against that round's untraced run (only with --compare). */
  vsUntraced: { rate: Spread; p50: Spread } | null;
}

export function summarize(rounds: RoundResult[][], mode: TraceMode): ModeSummary | null {
  const mine = rounds.map((r) => r.find((x) => x.mode === mode)).filter((x): x is RoundResult => !!x);
  if (!mine.length) return null;
  const traced = mode !== 'off';
  const pairs = rounds
    .map((r) => [r.find((x) => x.mode === 'off'), r.find((x) => x.mode === mode)])
    .filter((p): p is [RoundResult, RoundResult] => !!p[0] && !!p[1]);
  const total = (f: (r: RoundResult) => number | null): number => mine.reduce((a, r) => a + (f(r) ?? 0), 0);
  return {
    mode,
    rounds: mine.length,
    rate: spread(mine.map((r) => r.rate)),
    p50Us: spread(mine.map((r) => r.latencyUs.p50)),
    p99Us: spread(mine.map((r) => r.latencyUs.p99)),
    maxUs: spread(mine.map((r) => r.latencyUs.max)),
    errors: total((r) => r.errors),
    complete: traced ? mine.every(complete) : null,
    drops: traced ? total((r) => r.drops) : null,
    missed: traced ? total((r) => r.missed) : null,
    bpfNsPerEvent: traced ? spread(mine.map((r) => r.bpf!.nsPerEvent)) : null,
    bpfNsPerRun: traced ? spread(mine.map((r) => r.bpf!.nsPerRun)) : null,
    onStateNsPerRun: traced ? spread(mine.map((r) => r.bpf!.onStateNsPerRun)) : null,
    tracerCpuPct: spread(mine.map((r) => r.tracerCpuPct)),
    rssMiB: spread(mine.map((r) => r.rssMiB.peak)),
    vsUntraced:
      traced && pairs.length
        ? {
            rate: spread(pairs.map(([u, t]) => (u.rate ? t.rate / u.rate : 0))),
            p50: spread(pairs.map(([u, t]) => (u.latencyUs.p50 ? t.latencyUs.p50 / u.latencyUs.p50 : 0))),
          }
        : null,
  };
}
