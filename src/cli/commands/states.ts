/**
 * `nettrace states`: the TCP state histogram (netstat -tan | awk '{print $6}' | sort | uniq -c),
 * live, with transitions per second between states and an ss -s style summary.
 *
 * It pays for no record per transition when it need not: the kernel counts
 * transitions per (old, new) state and the histogram comes from the socket
 * snapshot. Only a filter the kernel cannot decide exactly (an owner, or an
 * expression) makes it take a state record per transition and count them here.
 */
import { Kind } from '../../layout';
import { FlowMonitor } from '../../flows/flow-monitor';
import { decodeSnapshot } from '../../flows/snapshot';
import { stateName, TcpState } from '../../tcp';
import { TraceOptions } from '../../trace-options';
import { Tracer } from '../../tracer';
import { start, stopRequested } from '../lifecycle';
import { COMMON_HELP, CommonOptions, parseCommand, stdoutOnly, traceOptions, UsageError } from '../options';

export const STATES_USAGE = `Usage: nettrace states [options] [FILTER]

The TCP state histogram, live, with transitions per second between states.
TCP only: UDP sockets have no states (see nettrace flows -u). The kernel counts
the transitions and the histogram comes from a socket snapshot, so no record
is made per transition; a filter on owners (pid, comm) or an expression makes
it take a record per transition instead (--port, -4 and -6 do not).

Options:
  -i, --interval SEC  seconds between reports (default 1)
  -c, --count N       stop after N reports
  -d, --duration SEC  stop after SEC seconds
${COMMON_HELP}`;

export interface StatesOptions extends CommonOptions {
  intervalMs: number;
}

export interface StatesReport {
  ts: number;
  /** Sockets per state now, TIME_WAIT and pending SYN_RECV included, as ss -tan counts them. */
  states: Partial<Record<TcpState, number>>;
  /** "OLD>NEW": transitions per second over the last interval. */
  transitions: Record<string, number>;
  /** "OLD>NEW": transitions over the last interval, exactly. */
  counts: Record<string, number>;
  summary: { total: number; estab: number; closed: number; synrecv: number; timewait: number };
}

/** Where the transitions come from: the kernel's counters, or a record each. */
function inKernel(o: CommonOptions): boolean {
  return o.kernelExact;
}

/** What `states` asks of the tracer. */
export function statesTraceOptions(o: CommonOptions): TraceOptions {
  const base = traceOptions(o);
  return inKernel(o) ? { ...base, events: [], trackSockets: false, countStates: true } : { ...base, events: ['state'] };
}

/** What ss -tan lists: sockets that exist now, pending connections as SYN_RECV. */
export function histogram(sockets: { state: TcpState; closed?: number | null }[]): Partial<Record<TcpState, number>> {
  const h: Partial<Record<TcpState, number>> = {};
  for (const f of sockets) {
    if (f.closed != null && f.state !== 'TIME_WAIT') continue; // a closed flow in its grace period
    const s = f.state === 'NEW_SYN_RECV' ? 'SYN_RECV' : f.state;
    h[s] = (h[s] ?? 0) + 1;
  }
  return h;
}

export function renderStates(r: StatesReport): string {
  const lines = Object.entries(r.states)
    .sort((a, b) => b[1] - a[1])
    .map(([s, n]) => `${String(n).padStart(8)} ${s}`);
  const moves = Object.entries(r.transitions)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${n.toFixed(1).padStart(8)}/s ${t}`);
  const s = r.summary;
  return [
    `${new Date(r.ts).toISOString()}  TCP: ${s.total} (estab ${s.estab}, closed ${s.closed}, synrecv ${s.synrecv}, timewait ${s.timewait})`,
    ...lines,
    ...(moves.length ? ['transitions:', ...moves] : []),
  ].join('\n');
}

/** The two ways of reading a histogram and the transitions since the last read. */
interface StatesSource {
  read(now: number): { states: Partial<Record<TcpState, number>>; counts: Map<string, number> };
}

/** Transitions from the kernel's counters, the histogram straight from the snapshot. */
function kernelSource(o: CommonOptions, tracer: Tracer): StatesSource {
  let last = tracer.stateCounts();
  return {
    read() {
      const rows = decodeSnapshot(tracer.snapshot()).map((r) => ({ ...r, proto: 'tcp' as const, state: stateName(r.state) }));
      const now = tracer.stateCounts();
      const counts = new Map<string, number>();
      now.forEach((n, i) => {
        if (n > last[i]) counts.set(`${stateName(i >> 4)}>${stateName(i & 15)}`, n - last[i]);
      });
      last = now;
      return { states: histogram(rows.filter((r) => o.match(r))), counts };
    },
  };
}

/** Transitions from a record each, filtered like any record; the histogram from the flow table. */
function recordSource(o: CommonOptions, tracer: Tracer): StatesSource {
  const monitor = new FlowMonitor(tracer);
  let counts = new Map<string, number>();
  tracer.onBatch((c) => {
    while (c.next()) {
      if (c.kind !== Kind.State) continue;
      const key = `${stateName(c.oldState)}>${stateName(c.newState)}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  });
  return {
    read(now) {
      monitor.refresh(now);
      const flows = monitor.table.flows().filter((f) => f.proto === 'tcp' && o.match(f));
      const taken = counts;
      counts = new Map();
      return { states: histogram(flows), counts: taken };
    },
  };
}

/** Starts the reports; returns how to end them (the timer first, so no report reads a stopped tracer). */
export function statesCommand(o: StatesOptions, tracer: Tracer, done: (code: number) => void): (code: number) => void {
  const source = inKernel(o) ? kernelSource(o, tracer) : recordSource(o, tracer);
  let last = Date.now();
  let reports = 0;
  let timer: NodeJS.Timeout | undefined;
  const report = (): void => {
    const now = Date.now();
    const { states, counts } = source.read(now);
    const dt = (now - last) / 1000;
    last = now;
    const transitions = Object.fromEntries([...counts].map(([k, n]) => [k, dt > 0 ? Math.round((n / dt) * 10) / 10 : 0]));
    const total = Object.values(states).reduce((a, b) => a + (b ?? 0), 0);
    const r: StatesReport = {
      ts: now,
      states,
      transitions,
      counts: Object.fromEntries(counts),
      summary: {
        total,
        estab: states.ESTABLISHED ?? 0,
        closed: (states.CLOSE ?? 0) + (states.TIME_WAIT ?? 0),
        synrecv: states.SYN_RECV ?? 0,
        timewait: states.TIME_WAIT ?? 0,
      },
    };
    process.stdout.write((o.json ? JSON.stringify(r) : renderStates(r) + '\n') + '\n');
    if (o.count !== undefined && ++reports >= o.count) end(0);
  };
  let ended = false;
  const end = (code: number): void => {
    clearInterval(timer);
    if (!ended) done(code);
    ended = true;
  };
  report();
  if (!ended) timer = setInterval(report, o.intervalMs);
  return end;
}

/** `nettrace states [options] [FILTER]`: reports until --count, --duration or a signal. */
export function runStates(argv: string[]): void {
  const { common, values } = parseCommand(argv, { interval: { type: 'string', short: 'i' } });
  if (common.help) return void process.stdout.write(STATES_USAGE + '\n');
  stdoutOnly('states', common);
  const interval = values.interval === undefined ? 1 : Number(values.interval);
  if (values.interval !== undefined && !(/^\d+(\.\d+)?$/.test(String(values.interval)) && interval >= 0.1 && interval <= 3600)) {
    throw new UsageError(`--interval must be a number of seconds from 0.1 to 3600, not '${values.interval}'`);
  }
  if (!common.protos.includes('tcp')) throw new UsageError('states is TCP only: UDP sockets have no states (try nettrace flows -u)');
  const stop = stopRequested(common);
  const tracer = start(statesTraceOptions(common));
  const done = (code: number): void => void tracer.stop().then(() => process.exit(code));
  const end = statesCommand({ ...common, intervalMs: interval * 1000 }, tracer, done);
  void stop.then(() => end(0));
}
