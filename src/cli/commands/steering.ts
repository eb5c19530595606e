/**
 * `nettrace steering`: per flow, per process and per interface, on which CPUs
 * the kernel processed received segments and on which the reader ran, the
 * CPU matrix, the RPS/RFS configuration, and `steering` events for flows
 * whose locality stays low.
 */
import { ParseArgsConfig } from 'node:util';
import { FlowMonitor } from '../../flows/flow-monitor';
import { SteeringMonitor } from '../../steering/steering-monitor';
import { CpuCounts, SteeringEvent, SteeringGroup, SteeringReport } from '../../steering/types';
import { Tracer } from '../../tracer';
import { start, stopRequested } from '../lifecycle';
import { COMMON_HELP, CommonOptions, flowTraceOptions, parseCommand, UsageError } from '../options';
import { printable } from '../render';
import { endpoint, table } from '../text-table';
import { TOP_OPTIONS, topOptions } from '../view-options';

export const STEERING_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  ...TOP_OPTIONS,
  below: { type: 'string' },
  for: { type: 'string' },
};

export const STEERING_USAGE = (common: string): string => `Usage: nettrace steering [options] [FILTER]

Receive steering (RPS/RFS), live: for each TCP flow the CPUs on which the
kernel processed its incoming segments (after RPS), the CPUs on which its
reader consumed them, and the locality: the share of segments processed on
the CPU where the reader last ran. Where segments entered the stack on other
CPUs before RPS moved them, those are shown too. Per process and per
interface: locality and the CPU matrix; and the rps_cpus, rps_flow_cnt and
rps_sock_flow_entries that explain it. A flow whose locality stays below
--below for --for seconds prints a steering event.

Options:
  -i, --interval SEC  seconds between reports (default 1)
  -c, --count N       stop after N reports
  -d, --duration SEC  stop after SEC seconds
      --below FRAC    locality threshold of steering events, 0 to 1 (default 0.5)
      --for SEC       how long a flow must stay below it (default 5)
${common}`;

export interface SteeringCliOptions extends CommonOptions {
  intervalMs: number;
  threshold: number;
  holdMs: number;
}

export function steeringOptions(common: CommonOptions, values: Record<string, unknown>): SteeringCliOptions {
  const below = values.below === undefined ? '0.5' : String(values.below);
  if (!/^\d+(\.\d+)?$/.test(below) || Number(below) > 1) throw new UsageError(`--below must be a fraction from 0 to 1, not '${below}'`);
  const hold = values.for === undefined ? '5' : String(values.for);
  if (!/^\d+(\.\d+)?$/.test(hold)) throw new UsageError(`--for must be a number of seconds, not '${hold}'`);
  return { ...topOptions(common, values), threshold: Number(below), holdMs: Number(hold) * 1000 };
}

const pct = (x: number | null): string => (x === null ? '-' : `${Math.round(x * 100)}%`);

/** "1:97% 0:3%": CPUs by share, largest first. */
export function cpuShares(c: CpuCounts | null): string {
  if (!c) return '-';
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  if (total === 0) return '-';
  return Object.entries(c)
    .sort((a, b) => b[1] - a[1])
    .map(([cpu, n]) => `${cpu}:${Math.round((n / total) * 100)}%`)
    .join(' ');
}

function matrix(g: SteeringGroup): string {
  const cpus = g.matrix.length;
  const header = ['processed \\ read', ...Array.from({ length: cpus }, (_, i) => `cpu${i}`)];
  return table(header, g.matrix.map((row, p) => [`cpu${p}`, ...row.map(String)]));
}

function groups(title: string, gs: SteeringGroup[]): string {
  return table([title, 'Flows', 'Segs', 'Locality'], gs.map((g) => [printable(g.key), String(g.flows), String(g.segs), pct(g.locality)]));
}

export function renderSteering(r: SteeringReport): string {
  const flows = table(
    ['Local', 'Peer', 'Process', 'Iface', 'Segs', 'Segs/int', 'Processed-on', 'Entered-on', 'Read-on', 'Reader', 'Locality', 'Int'],
    r.flows.map((f) => [
      f.saddr === null ? `sock ${f.sock}` : endpoint(f.saddr, f.sport!, f.family!),
      f.daddr === null ? '-' : endpoint(f.daddr, f.dport!, f.family!),
      f.pid === null ? '-' : `${printable(f.comm ?? '')},pid=${f.pid}`,
      f.interface ?? (f.ifindex === null ? '-' : `if${f.ifindex}`),
      String(f.segs),
      String(f.interval.segs),
      cpuShares(f.processed_on),
      cpuShares(f.entered_on),
      cpuShares(f.read_on),
      f.reader_cpu === null ? '-' : `cpu${f.reader_cpu}`,
      pct(f.locality),
      pct(f.interval.locality),
    ]),
  );
  const config = table(
    ['Iface', 'Netns', 'Queue', 'rps_cpus', 'rps_flow_cnt', 'RPS', 'RFS'],
    r.config.interfaces.flatMap((i) =>
      i.queues.map((q) => [i.name, String(i.netns), q.queue, q.rps_cpus.join(',') || '-', String(q.rps_flow_cnt), q.rps ? 'on' : 'off', q.rfs ? 'on' : 'off']),
    ),
  );
  const unreadable = r.config.unreadable.map((u) => `netns ${u.netns}: configuration unreadable: ${u.reason}`);
  const losses = r.evictions || r.unhashed ? [`lost: ${r.evictions} map entries evicted, ${r.unhashed} packets without a flow hash`] : [];
  return [
    `${new Date(r.ts).toISOString()}  steering: ${r.flows.length} flows, ${r.overall.segs} segments, locality ${pct(r.overall.locality)}`,
    flows,
    '',
    groups('Process', r.processes),
    '',
    groups('Interface', r.interfaces),
    '',
    'CPU matrix, all flows (segments):',
    matrix(r.overall),
    '',
    config,
    `net.core.rps_sock_flow_entries = ${r.config.rps_sock_flow_entries}`,
    ...unreadable,
    ...losses,
  ].join('\n');
}

export function renderEvent(e: SteeringEvent): string {
  const who = e.pid === null ? '' : ` ${printable(e.comm ?? '')},pid=${e.pid}`;
  const ends = e.saddr === null ? `sock ${e.sock}` : `${endpoint(e.saddr, e.sport!, e.family!)} < ${endpoint(e.daddr!, e.dport!, e.family!)}`;
  return `steering: ${ends}${who}: locality ${pct(e.locality)} below ${pct(e.threshold)} for ${(e.below_ms / 1000).toFixed(1)}s (processed on ${cpuShares(e.processed_on)}, read on ${cpuShares(e.read_on)})`;
}

export function steeringCommand(o: SteeringCliOptions, tracer: Tracer, done: (code: number) => void): () => void {
  const monitor = new SteeringMonitor(new FlowMonitor(tracer), { threshold: o.threshold, holdMs: o.holdMs });
  let reports = 0;
  const report = (): void => {
    const { report, events } = monitor.sample(Date.now(), (f) => (f ? o.match(f) : o.recordFilter === undefined));
    const lines = o.json ? [report, ...events].map((x) => JSON.stringify(x)) : [renderSteering(report), ...events.map(renderEvent), ''];
    process.stdout.write(lines.join('\n') + '\n');
    if (o.count !== undefined && ++reports >= o.count) {
      clearInterval(timer);
      done(0);
    }
  };
  const timer = setInterval(report, o.intervalMs);
  return () => clearInterval(timer);
}

/** `nettrace steering [options] [FILTER]`: reports until --count, --duration or a signal. */
export function runSteering(argv: string[]): void {
  const { common, values } = parseCommand(argv, STEERING_OPTIONS);
  if (common.help) return void process.stdout.write(STEERING_USAGE(COMMON_HELP) + '\n');
  const o = steeringOptions(common, values);
  const stop = stopRequested(common);
  const tracer = start({ ...flowTraceOptions(common), steering: true });
  const done = (code: number): void => void tracer.stop().then(() => process.exit(code));
  const cancel = steeringCommand(o, tracer, done);
  void stop.then(() => {
    cancel();
    done(0);
  });
}
