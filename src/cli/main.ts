/** `nettrace [command]`: parses, starts the tracer, runs the command, exits with 0, 1 or 2. */
import { NettraceError } from '../errors';
import { Clock, toEvent } from '../events';
import { Tracer, TraceOptions } from '../tracer';
import { USAGE } from './args';
import { flowsCommand, FlowsOptions } from './flows';
import { COMMON_HELP, CommonOptions, parseCommand, UsageError } from './options';
import { HEADER, kindName, textLine } from './render';
import { statesCommand } from './states';
import { TOP_OPTIONS, topCommand, topOptions } from './top';

const VERSION: string = require('../../../package.json').version;

function fail(message: string, code: number): never {
  process.stderr.write(`nettrace: ${message}\n`);
  process.exit(code);
}

const FLOWS_USAGE = `Usage: nettrace flows [-l|-a] [-t|-u] [options] [FILTER]

Every TCP and UDP socket now, as ss -tuanp shows them, with data bytes and RTT
(UDP: datagrams, the kernel's drops, and per remote endpoint bytes of
unconnected sockets in --json, the top ones under each socket in the table).
Sockets that predate nettrace are included, their owners found in /proc.

Options:
  -l, --listening     only listening sockets (Recv-Q: pending accepts, Send-Q: backlog)
                      and unconnected UDP sockets (UNCONN), as ss -l
  -a, --all           listening and connected sockets
${COMMON_HELP}`;

const STATES_USAGE = `Usage: nettrace states [options] [FILTER]

The TCP state histogram, live, with transitions per second between states.
TCP only: UDP sockets have no states (see nettrace flows -u).

Options:
  -i, --interval SEC  seconds between reports (default 1)
  -c, --count N       stop after N reports
  -d, --duration SEC  stop after SEC seconds
${COMMON_HELP}`;

const TOP_USAGE = `Usage: nettrace top [options] [FILTER]

Network use per process, per remote host and per connection, live and
full-screen like bandwhich, sorted by throughput. Listening sockets are left
out; closed connections stay dimmed for a few seconds. When stdout is not a
terminal, or with --json, prints one snapshot per interval instead.

Keys: q or Ctrl-C quit, tab or 1/2/3 switch pane, s sort (rate, bytes, name),
/ filter in the FILTER grammar (Enter applies, Esc cancels), p pause.

Options:
  -i, --interval SEC  seconds between refreshes (default 1)
  -c, --count N       stop after N refreshes
  -d, --duration SEC  stop after SEC seconds
${COMMON_HELP}`;

function start(options: TraceOptions): Tracer {
  try {
    const tracer = Tracer.start(options);
    // a fallback keeps the feature whole (tracer.hooks says which); only a missing one is news
    for (const h of tracer.hooks) {
      if (h.status === 'unavailable') process.stderr.write(`nettrace: ${h.name} events are unavailable: ${h.detail}\n`);
    }
    return tracer;
  } catch (e) {
    fail(e instanceof NettraceError ? e.message : String(e), 1);
  }
}

/**
 * Resolves on SIGINT, SIGTERM, SIGHUP, --duration or a closed stdout. Call it
 * before loading anything, so a signal that arrives during start-up still
 * stops cleanly instead of killing the process with its programs attached.
 */
function stopRequested(o: CommonOptions): Promise<void> {
  return new Promise((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => resolve());
    if (o.durationMs !== undefined) setTimeout(resolve, o.durationMs).unref();
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') resolve();
    });
  });
}

function summary(tracer: Tracer, printed: number, byKind: Map<string, number>): string {
  const s = tracer.stats();
  const kinds = [...byKind].map(([k, n]) => `${k} ${n}`).join(', ');
  const missed = s.missed ? `, ${s.missed} missed by the kernel (hook re-entered)` : '';
  const evicted = s.evictions ? `, ${s.evictions} sockets evicted from the kernel's table (owner lost)` : '';
  return `nettrace: ${printed} events${kinds ? ` (${kinds})` : ''}, ${s.drops} dropped${missed}${evicted}\n`;
}

function stream(o: CommonOptions): void {
  const stop = stopRequested(o);
  const tracer = start({ filter: o.recordFilter, kernelFilter: o.kernelFilter });
  const clock = new Clock();
  const byKind = new Map<string, number>();
  let printed = 0;
  if (!o.json) process.stdout.write(HEADER + '\n');
  let finishing: Promise<void> | undefined;
  const finish = (): Promise<void> =>
    (finishing ??= tracer.stop().then(() => {
      process.stderr.write(summary(tracer, printed, byKind));
      process.exit(0);
    }));
  tracer.onBatch((c) => {
    const out: string[] = [];
    while (c.next()) {
      if (o.count !== undefined && printed >= o.count) break;
      out.push(o.json ? JSON.stringify(toEvent(c, clock)) : textLine(c, clock));
      const k = kindName(c.kind);
      byKind.set(k, (byKind.get(k) ?? 0) + 1);
      printed++;
    }
    if (out.length) process.stdout.write(out.join('\n') + '\n');
    if (o.count !== undefined && printed >= o.count) void finish();
  });
  void stop.then(finish);
}

function flows(argv: string[]): void {
  const { common, values } = parseCommand(argv, {
    listening: { type: 'boolean', short: 'l' },
    all: { type: 'boolean', short: 'a' },
  });
  if (common.help) return void process.stdout.write(FLOWS_USAGE + '\n');
  const o: FlowsOptions = { ...common, listening: (values.listening as boolean) ?? false, all: (values.all as boolean) ?? false };
  const stop = stopRequested(common);
  const tracer = start({ filter: common.recordFilter, kernelFilter: common.kernelFilter });
  void stop.then(() => tracer.stop().then(() => process.exit(0)));
  flowsCommand(o, tracer).then(
    () => process.exit(0),
    (e) => fail(e instanceof Error ? e.message : String(e), 1),
  );
}

function states(argv: string[]): void {
  const { common, values } = parseCommand(argv, { interval: { type: 'string', short: 'i' } });
  if (common.help) return void process.stdout.write(STATES_USAGE + '\n');
  const interval = values.interval === undefined ? 1 : Number(values.interval);
  if (values.interval !== undefined && !(/^\d+(\.\d+)?$/.test(String(values.interval)) && interval >= 0.1 && interval <= 3600)) {
    throw new UsageError(`--interval must be a number of seconds from 0.1 to 3600, not '${values.interval}'`);
  }
  if (!common.protos.includes('tcp')) throw new UsageError('states is TCP only: UDP sockets have no states (try nettrace flows -u)');
  const stop = stopRequested(common);
  const tracer = start({ filter: common.recordFilter, kernelFilter: common.kernelFilter });
  const done = (code: number): void => void tracer.stop().then(() => process.exit(code));
  statesCommand({ ...common, intervalMs: interval * 1000 }, tracer, done);
  void stop.then(() => done(0));
}

function top(argv: string[]): void {
  const { common, values } = parseCommand(argv, TOP_OPTIONS);
  if (common.help) return void process.stdout.write(TOP_USAGE + '\n');
  const o = topOptions(common, values);
  const stop = stopRequested(common);
  const tracer = start({ filter: common.recordFilter, kernelFilter: common.kernelFilter });
  const view = topCommand(o, tracer, (code) => void tracer.stop().then(() => process.exit(code)));
  void stop.then(() => view.quit(0));
}

export function main(argv = process.argv.slice(2)): void {
  try {
    const [command, ...rest] = argv;
    if (command === 'flows') return flows(rest);
    if (command === 'states') return states(rest);
    if (command === 'top') return top(rest);
    const { common } = parseCommand(argv);
    if (common.help) return void process.stdout.write(USAGE + '\n');
    if (common.version) return void process.stdout.write(`nettrace ${VERSION}\n`);
    stream(common);
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message} (see nettrace --help)`, 2);
    throw e;
  }
}
