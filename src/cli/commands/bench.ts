/** `nettrace bench churn`: connection churn from native threads, measured untraced and traced. */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { enableBpfStats } from '../../bench/bpfstats';
import { churnRound, RoundResult, TraceMode } from '../../bench/churn';
import { createVethPair, VethPair } from '../../bench/netns';
import { reportHtml, reportSvg } from '../../bench/report';
import { ModeSummary, Spread, summarize } from '../../bench/summary';
import { ChurnOptions } from '../../bench/generator';
import { argsError, integer, seconds, UsageError } from '../options';
import { table } from '../text-table';

export const BENCH_USAGE = `Usage: nettrace bench churn [options]

Opens and closes TCP connections from native threads (connect, payload each
way, the server closes first, the client closes by RST or FIN) and measures
the rate, connect latency, and what nettrace in this process captured of it
and cost: BPF run time per event, CPU, memory, drops.

Options:
  -d, --duration SEC    seconds of load per round (default 5)
      --rate N          connections per second (default: as fast as possible)
  -c, --concurrency N   client threads, one connection each at a time (default 32)
      --acceptors N     accepting threads (default 8)
      --payload BYTES   bytes sent each way on every connection (default 0)
  -4, --ipv4            IPv4 (the default)
  -6, --ipv6            IPv6
      --close rst|fin   how the client closes after the server's FIN (default rst:
                        SO_LINGER 0, no TIME_WAIT anywhere)
      --net loopback|veth  over loopback, or across a veth pair between two
                        network namespaces created for the run and removed after
      --mode aggregate|stream  what the tracer does with each record: fold it into
                        the flow table only (default), or make an event object and
                        its JSON line
      --dns             traced rounds also attach the DNS hooks (nettrace dns), which run per packet
      --untraced        measure the load alone
      --compare         untraced and traced in alternating rounds, with ratios
      --rounds N        rounds for --compare (default 3)
      --json            one JSON object instead of the table
      --report FILE     plots of rate and latency over time (FILE ends .html or .svg)
  -h, --help            show this help`;

const OPTIONS = {
  duration: { type: 'string', short: 'd' },
  rate: { type: 'string' },
  concurrency: { type: 'string', short: 'c' },
  acceptors: { type: 'string' },
  payload: { type: 'string' },
  ipv4: { type: 'boolean', short: '4' },
  ipv6: { type: 'boolean', short: '6' },
  close: { type: 'string' },
  net: { type: 'string' },
  mode: { type: 'string' },
  dns: { type: 'boolean' },
  untraced: { type: 'boolean' },
  compare: { type: 'boolean' },
  rounds: { type: 'string' },
  json: { type: 'boolean' },
  report: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface BenchOptions {
  durationMs: number;
  rate?: number;
  concurrency: number;
  acceptors: number;
  payload: number;
  family: 4 | 6;
  close: 'rst' | 'fin';
  net: 'loopback' | 'veth';
  mode: 'aggregate' | 'stream';
  /** Traced rounds also attach the DNS hooks (per packet), to measure what they cost with no DNS traffic. */
  dns: boolean;
  untraced: boolean;
  compare: boolean;
  rounds: number;
  json: boolean;
  report?: string;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw new UsageError(`${name} takes ${allowed.join(' or ')}, not '${value}'`);
  return value as T;
}

/** Parses `bench churn ...`; null means --help. */
export function parseBench(argv: string[]): BenchOptions | null {
  const [sub, ...rest] = argv;
  if (sub === '-h' || sub === '--help') return null;
  if (sub !== 'churn') throw new UsageError(sub ? `unknown benchmark '${sub}' (there is: churn)` : 'bench needs a benchmark: churn');
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: OPTIONS }));
  } catch (e) {
    throw argsError(e);
  }
  if (values.help) return null;
  if (values.ipv4 && values.ipv6) throw new UsageError('-4 and -6 exclude each other');
  if (values.untraced && values.compare) throw new UsageError('--untraced and --compare exclude each other');
  const report = values.report as string | undefined;
  if (report !== undefined && !/\.(html|svg)$/.test(report)) throw new UsageError(`--report writes .html or .svg, not '${report}'`);
  const durationMs = seconds('--duration', values.duration) ?? 5000;
  if (durationMs > 24 * 3600 * 1000) throw new UsageError('--duration is at most a day');
  const rate = integer('--rate', values.rate, 1, 10_000_000);
  return {
    durationMs,
    rate,
    concurrency: integer('--concurrency', values.concurrency, 1, 4096) ?? 32,
    acceptors: integer('--acceptors', values.acceptors, 1, 1024) ?? 8,
    payload: integer('--payload', values.payload, 0, 1 << 20) ?? 0,
    family: values.ipv6 ? 6 : 4,
    close: oneOf('--close', values.close, ['rst', 'fin'] as const, 'rst'),
    net: oneOf('--net', values.net, ['loopback', 'veth'] as const, 'loopback'),
    mode: oneOf('--mode', values.mode, ['aggregate', 'stream'] as const, 'aggregate'),
    dns: (values.dns as boolean) ?? false,
    untraced: (values.untraced as boolean) ?? false,
    compare: (values.compare as boolean) ?? false,
    rounds: integer('--rounds', values.rounds, 1, 1000) ?? 3,
    json: (values.json as boolean) ?? false,
    report,
  };
}

function progressBar(o: BenchOptions): (label: string, elapsedMs: number, rate: number) => void {
  if (!process.stderr.isTTY) return () => {};
  return (label, elapsedMs, rate) => {
    const width = 30;
    const done = Math.min(1, elapsedMs / o.durationMs);
    const bar = '#'.repeat(Math.round(done * width)).padEnd(width, '.');
    const line = `[${bar}] ${label}  ${(elapsedMs / 1000).toFixed(1)}/${(o.durationMs / 1000).toFixed(1)}s  ${Math.round(rate)} conns/s`;
    process.stderr.write(`\r${line.slice(0, (process.stderr.columns || 80) - 1)}\x1b[K`);
  };
}

function num(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function cell(s: Spread | null, digits = 0, suffix = ''): string {
  if (!s) return '-';
  const m = `${num(s.median, digits)}${suffix}`;
  return s.min === s.max ? m : `${m} [${num(s.min, digits)}-${num(s.max, digits)}]`;
}

const MODE_LABEL: Record<TraceMode, string> = { off: 'untraced', aggregate: 'nettrace aggregate', stream: 'nettrace stream' };

export function summaryTable(summaries: ModeSummary[], rounds: RoundResult[][]): string {
  const rows = summaries.map((s) => {
    const mine = rounds.flat().filter((r) => r.mode === s.mode);
    const captured = mine.reduce((a, r) => a + (r.captured ? r.captured.connect + r.captured.accept + r.captured.close : 0), 0);
    const expected = mine.reduce((a, r) => a + (r.expected ? r.expected.connect + r.expected.accept + r.expected.close : 0), 0);
    return [
      MODE_LABEL[s.mode],
      cell(s.rate),
      s.vsUntraced ? cell(s.vsUntraced.rate, 2, 'x') : s.mode === 'off' ? '1x' : '-',
      cell(s.p50Us, 1),
      cell(s.p99Us, 1),
      cell(s.maxUs, 0),
      s.complete === null ? '-' : `${captured}/${expected}`,
      s.drops === null ? '-' : String(s.drops),
      cell(s.bpfNsPerEvent),
      cell(s.onStateNsPerRun),
      cell(s.tracerCpuPct, 1, '%'),
      cell(s.rssMiB),
    ];
  });
  return table(
    ['', 'conns/s', 'vs untraced', 'p50 us', 'p99 us', 'max us', 'events cap/exp', 'drops', 'BPF ns/event', 'on_state ns/run', 'CPU', 'RSS MiB'],
    rows,
  );
}

function loadOptions(o: BenchOptions, veth: VethPair | undefined): ChurnOptions {
  return {
    rate: o.rate,
    concurrency: o.concurrency,
    acceptors: o.acceptors,
    payload: o.payload,
    server: veth ? veth.serverAddr : o.family === 6 ? '::1' : '127.0.0.1',
    rst: o.close === 'rst',
    serverNetns: veth?.serverNsPath,
    clientNetns: veth?.clientNsPath,
    durationMs: o.durationMs,
  };
}

/** Runs the benchmark; resolves to the exit code. Cleans up namespaces and the BPF statistics switch on every path. */
export async function benchCommand(o: BenchOptions): Promise<number> {
  let aborted = false;
  const onSignal = (): void => void (aborted = true);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  const restoreStats = o.untraced ? () => {} : enableBpfStats();
  let veth: VethPair | undefined;
  const progress = progressBar(o);
  const rounds: RoundResult[][] = [];
  const modes: TraceMode[] = o.compare ? ['off', o.mode] : o.untraced ? ['off'] : [o.mode];
  const total = o.compare ? o.rounds : 1;
  const loadAvg = os.loadavg();
  try {
    veth = o.net === 'veth' ? createVethPair(o.family) : undefined;
    const load = loadOptions(o, veth);
    for (let i = 0; i < total && !aborted; i++) {
      const round: RoundResult[] = [];
      for (const mode of modes) {
        if (aborted) break;
        const label = `${total > 1 ? `round ${i + 1}/${total} ` : ''}${MODE_LABEL[mode]}`;
        round.push(await churnRound(load, mode, { progress: (ms, rate) => progress(label, ms, rate), aborted: () => aborted, dns: o.dns }));
      }
      rounds.push(round);
    }
  } finally {
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    veth?.remove();
    restoreStats();
  }
  if (aborted) {
    process.stderr.write('nettrace: bench interrupted\n');
    return 130;
  }
  const summaries = modes.map((m) => summarize(rounds, m)).filter((s): s is ModeSummary => !!s);
  const text = summaryTable(summaries, rounds);
  const title = `nettrace bench churn: ${o.net} IPv${o.family}, close by ${o.close.toUpperCase()}, ${o.rate ? `${o.rate} conns/s` : 'max rate'}, ` +
    `${o.concurrency} clients, ${o.payload} B payload, ${os.cpus().length} CPUs, ${new Date().toISOString()}`;
  if (o.report) writeFileSync(o.report, o.report.endsWith('.svg') ? reportSvg(rounds, title) : reportHtml(rounds, title, text));
  if (o.json) {
    const { json: _json, report: _report, ...options } = o;
    process.stdout.write(
      JSON.stringify({
        benchmark: 'churn',
        date: new Date().toISOString(),
        machine: { kernel: os.release(), cpus: os.cpus().length, loadavg: loadAvg },
        options,
        summary: Object.fromEntries(summaries.map((s) => [s.mode === 'off' ? 'untraced' : s.mode, s])),
        rounds,
      }) + '\n',
    );
  } else {
    process.stdout.write(`${title}\nload average before: ${loadAvg.map((l) => l.toFixed(2)).join(' ')}\n\n${text}\n`);
  }
  const incomplete = summaries.some((s) => s.complete === false);
  if (incomplete) process.stderr.write('nettrace: the tracer did not capture every connect, accept and close of the load\n');
  return 0;
}
