/**
 * One churn round: the native generator's load, untraced or under a tracer in
 * this same process, with what the tracer captured of it, what it cost in BPF
 * run time, CPU and memory, and a time series of rate and connect latency.
 */
import { RecordCursor } from '../record-cursor';
import { fromNative } from '../errors';
import { Clock, toEvent } from '../events';
import { FlowTable } from '../flows/flow-table';
import { Kind } from '../layout';
import { native, ProgStats } from '../native';
import { Tracer } from '../tracer';
import { ChurnOptions, ChurnRun, churnGenerator } from './generator';

/** off: untraced; aggregate: every record into the flow table only; stream: an event object and its JSON per record. */
export type TraceMode = 'off' | 'aggregate' | 'stream';

export interface Point {
  /** Seconds since the load started. */
  t: number;
  rate: number;
  p50Us: number;
  p99Us: number;
  /** This process's resident memory, MiB. */
  rssMiB: number;
}

export interface KindCounts {
  state: number;
  connect: number;
  accept: number;
  close: number;
}

export interface RoundResult {
  mode: TraceMode;
  seconds: number;
  conns: number;
  rate: number;
  errors: number;
  latencyUs: { p50: number; p99: number; max: number };
  /** Records the load must produce (connect, accept, close are one per socket event); null untraced. */
  expected: Omit<KindCounts, 'state'> | null;
  captured: KindCounts | null;
  /** Records the ring could not take, records the kernel skipped (hook re-entered), sockets evicted. */
  drops: number | null;
  missed: number | null;
  bpf: {
    runs: number;
    runTimeNs: number;
    nsPerRun: number;
    nsPerEvent: number;
    onStateNsPerRun: number;
    records: number;
    /** Runs of the DNS hooks (one per packet each way) and their time per run, with --dns. */
    dnsRuns: number;
    dnsNsPerRun: number;
  } | null;
  /** This process's CPU besides the generator's threads: the tracer, its drain thread, the decoder. */
  tracerCpuPct: number;
  rssMiB: { end: number; peak: number };
  series: Point[];
}

export interface RoundHooks {
  /** Called at every sample while the load runs. */
  progress?: (elapsedMs: number, rate: number) => void;
  /** Set when the run should end early (a signal). */
  aborted?: () => boolean;
  /** Attach the DNS hooks too (their records, if any, are not consumed). */
  dns?: boolean;
}

const SAMPLE_MS = 250;
const KIND_NAMES: Record<number, keyof KindCounts> = {
  [Kind.State]: 'state',
  [Kind.Connect]: 'connect',
  [Kind.Accept]: 'accept',
  [Kind.Close]: 'close',
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Consumes every record the way `mode` says, and counts the records of the load's port by kind. */
function consumer(mode: TraceMode, port: number, counts: KindCounts): { onBatch: (c: RecordCursor) => void; tick: () => void } {
  const clock = new Clock();
  const table = new FlowTable();
  let jsonBytes = 0;
  const count = (c: RecordCursor): void => {
    if (c.sport === port || c.dport === port) counts[KIND_NAMES[c.kind] ?? 'state']++;
  };
  if (mode === 'stream') {
    return {
      onBatch: (c) => {
        while (c.next()) {
          jsonBytes += JSON.stringify(toEvent(c, clock)).length;
          count(c);
        }
      },
      tick: () => void jsonBytes,
    };
  }
  return {
    onBatch: (c) => {
      while (c.next()) {
        table.applyRecord(c, clock);
        count(c);
      }
    },
    tick: () => table.tick(Date.now()),
  };
}

function sum(stats: ProgStats[], key: 'runCnt' | 'runTimeNs' | 'recursionMisses', name?: string): number {
  return stats.filter((s) => name === undefined || s.name === name).reduce((a, s) => a + s[key], 0);
}

export async function churnRound(load: ChurnOptions, mode: TraceMode, hooks: RoundHooks = {}): Promise<RoundResult> {
  let run: ChurnRun;
  try {
    run = churnGenerator().ChurnRun.open(load);
  } catch (e) {
    throw fromNative(e);
  }
  const counts: KindCounts = { state: 0, connect: 0, accept: 0, close: 0 };
  let tracer: Tracer | undefined;
  let tick = (): void => {};
  try {
    if (mode !== 'off') {
      // no kernel filter: every transition on the machine is traced and aggregated
      tracer = Tracer.start(hooks.dns ? { events: ['connect', 'accept', 'state', 'close', 'udp', 'dns'] } : {});
      const c = consumer(mode, run.port, counts);
      tracer.onBatch(c.onBatch);
      tick = c.tick;
      await sleep(100);
    }
    const ids = tracer?.kernelIds.programs ?? [];
    const bpf0 = native().bpfProgStats(ids);
    const rec0 = tracer?.stats();
    const cpu0 = process.cpuUsage();
    const series: Point[] = [];
    let peak = process.memoryUsage.rss();
    let lastConns = 0;
    let lastMs = 0;
    let lastTick = Date.now();
    run.go();
    for (;;) {
      await sleep(SAMPLE_MS);
      if (hooks.aborted?.()) run.stop();
      const s = run.sample();
      const dt = (s.elapsedMs - lastMs) / 1000;
      const rss = process.memoryUsage.rss();
      peak = Math.max(peak, rss);
      if (dt > 0) {
        series.push({
          t: s.elapsedMs / 1000,
          rate: (s.conns - lastConns) / dt,
          p50Us: s.intervalP50Ns / 1000,
          p99Us: s.intervalP99Ns / 1000,
          rssMiB: rss / 2 ** 20,
        });
      }
      lastConns = s.conns;
      lastMs = s.elapsedMs;
      if (Date.now() - lastTick >= 1000) {
        tick();
        lastTick = Date.now();
      }
      hooks.progress?.(s.elapsedMs, series.at(-1)?.rate ?? 0);
      if (!s.running) break;
    }
    const end = run.finish();
    const cpu = process.cpuUsage(cpu0);
    const bpf1 = native().bpfProgStats(ids);
    if (tracer) await tracer.stop(); // resolves after the last batch: the counts are final
    const rec1 = tracer?.stats();
    const seconds = end.elapsedMs / 1000;
    const records = rec0 && rec1 ? rec1.records + rec1.drops - rec0.records - rec0.drops : 0;
    const runs = sum(bpf1, 'runCnt') - sum(bpf0, 'runCnt');
    const runTimeNs = sum(bpf1, 'runTimeNs') - sum(bpf0, 'runTimeNs');
    const stateRuns = sum(bpf1, 'runCnt', 'on_state') - sum(bpf0, 'runCnt', 'on_state');
    const stateNs = sum(bpf1, 'runTimeNs', 'on_state') - sum(bpf0, 'runTimeNs', 'on_state');
    const dnsRuns = sum(bpf1, 'runCnt', 'dns_egress') + sum(bpf1, 'runCnt', 'dns_ingress') - sum(bpf0, 'runCnt', 'dns_egress') - sum(bpf0, 'runCnt', 'dns_ingress');
    const dnsNs = sum(bpf1, 'runTimeNs', 'dns_egress') + sum(bpf1, 'runTimeNs', 'dns_ingress') - sum(bpf0, 'runTimeNs', 'dns_egress') - sum(bpf0, 'runTimeNs', 'dns_ingress');
    const tracerCpuUs = Math.max(0, cpu.user + cpu.system - end.generatorCpuNs / 1000);
    return {
      mode,
      seconds,
      conns: end.conns,
      rate: end.conns / seconds,
      errors: end.errors,
      latencyUs: { p50: end.p50Ns / 1000, p99: end.p99Ns / 1000, max: end.maxNs / 1000 },
      expected: tracer
        ? {
            connect: end.connected + end.connectFailed,
            accept: end.accepted,
            close: end.connected + end.connectFailed + end.accepted,
          }
        : null,
      captured: tracer ? counts : null,
      drops: rec0 && rec1 ? rec1.drops - rec0.drops + rec1.queueDrops - rec0.queueDrops : null,
      missed: rec0 && rec1 ? rec1.missed - rec0.missed : null,
      bpf: tracer
        ? {
            runs,
            runTimeNs,
            nsPerRun: runs ? runTimeNs / runs : 0,
            nsPerEvent: records ? runTimeNs / records : 0,
            onStateNsPerRun: stateRuns ? stateNs / stateRuns : 0,
            records,
            dnsRuns,
            dnsNsPerRun: dnsRuns ? dnsNs / dnsRuns : 0,
          }
        : null,
      tracerCpuPct: (tracerCpuUs / 1e6 / seconds) * 100,
      rssMiB: { end: process.memoryUsage.rss() / 2 ** 20, peak: peak / 2 ** 20 },
      series,
    };
  } finally {
    run.stop();
    run.finish();
    if (tracer) await tracer.stop();
  }
}

/** Whether every connect, accept and close the load made was captured. */
export function complete(r: RoundResult): boolean {
  return !!r.expected && !!r.captured && (['connect', 'accept', 'close'] as const).every((k) => r.expected![k] === r.captured![k]);
}
