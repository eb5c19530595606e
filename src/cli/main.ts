/** `nettrace [command]`: parses, starts the tracer, runs the command, exits with 0, 1 or 2. */
import fs from 'node:fs';
import os from 'node:os';
import { NettraceError } from '../errors';
import { Clock, NettraceEvent, toEvent } from '../events';
import { EventMaker } from '../enrich';
import { isUnconnectedUdpClose } from '../flows/close-peers';
import { Kind } from '../layout';
import { Tracer } from '../tracer';
import { EventKind, TraceOptions } from '../trace-options';
import { CgroupResolver } from '../flows/cgroups';
import { USAGE } from './args';
import { DECODE_USAGE, decodeStream, openInput } from './decode';
import { BENCH_USAGE, benchCommand, parseBench } from './bench';
import { flowsCommand, FlowsOptions } from './flows';
import { DNS_OPTIONS, DNS_USAGE, dnsCommand, dnsOptions } from './dns';
import { openOutput, Output } from './output';
import { streamHeader, statsRecord } from './protobuf';
import { encodeItems } from '../proto/stream';
import { parseArgs } from 'node:util';
import { COMMON_HELP, CommonOptions, eventKinds, flowTraceOptions, parseCommand, seconds, traceOptions, UsageError } from './options';
import { hookReport } from './hooks';
import { eventLine, HEADER, kindName, textLine } from './render';
import { JsonLines, LineBuffer } from './json-line';
import { checkAddress, ROUTE_USAGE, routeCommand, ROUTES_USAGE, routesCommand } from './route';
import { SERVE_OPTIONS, SERVE_USAGE, serveCommand, serveOptions } from './serve';
import { statesCommand, statesTraceOptions } from './states';
import { STEERING_OPTIONS, STEERING_USAGE, steeringCommand, steeringOptions } from './steering';
import { TOP_OPTIONS, topCommand, topOptions } from './top';
import { versionLine } from '../build-info';


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
TCP only: UDP sockets have no states (see nettrace flows -u). The kernel counts
the transitions and the histogram comes from a socket snapshot, so no record
is made per transition; a filter on owners (pid, comm) or an expression makes
it take a record per transition instead (--port, -4 and -6 do not).

Options:
  -i, --interval SEC  seconds between reports (default 1)
  -c, --count N       stop after N reports
  -d, --duration SEC  stop after SEC seconds
${COMMON_HELP}`;

const TOP_USAGE = `Usage: nettrace top [options] [FILTER]

Network use per process, per remote host and per connection, live and
full-screen like bandwhich, sorted by throughput. Listening sockets are left
out; closed connections stay dimmed for a few seconds. When stdout is not a
terminal, or with --json, prints one snapshot per interval instead (with
--format protobuf, one Snapshot frame of the matching flows and their rollups).

Keys: q or Ctrl-C quit, tab or 1/2/3 switch pane, s sort (rate, bytes, name),
/ filter in the FILTER grammar (Enter applies, Esc cancels), p pause.

Options:
  -i, --interval SEC  seconds between refreshes (default 1)
  -n, --numeric       remote hosts as addresses only: no DNS names (which come from the
                      lookups each process made while nettrace ran, not reverse DNS)
  -c, --count N       stop after N refreshes
  -d, --duration SEC  stop after SEC seconds
${COMMON_HELP}`;

/**
 * The nice value nettrace runs at, as auditd takes a priority boost: when the
 * CPUs are saturated (the churn it is there to see), a reader at an equal
 * share falls behind and the ring drops records. Its threads inherit it, the
 * ring's drain thread among them. What it costs the traced work is what it
 * really uses, measured in bench/.
 */
const NICE = -10;

/** Raises the priority before the addon's threads start, so they inherit it; returns why it could not. */
function boostPriority(): string | undefined {
  try {
    if (os.getPriority() > NICE) os.setPriority(NICE);
    return undefined;
  } catch (e) {
    return `nettrace: cannot raise its scheduling priority (${(e as NodeJS.ErrnoException).code}): on saturated CPUs records may be dropped (and counted)\n`;
  }
}

function start(options: TraceOptions): Tracer {
  const notBoosted = boostPriority();
  try {
    const tracer = Tracer.start(options);
    if (notBoosted) process.stderr.write(notBoosted); // said only once tracing runs: a failed start has its own one line
    for (const line of hookReport(tracer.hooks)) process.stderr.write(`nettrace: ${line}
`);
    reportKernelIds(tracer);
    return tracer;
  } catch (e) {
    fail(e instanceof NettraceError ? e.message : String(e), 1);
  }
}

/**
 * NETTRACE_KERNEL_IDS=PATH writes the ids of every BPF program, link and map
 * this process holds to PATH as one JSON line once attached (a FIFO holds the
 * process there until it is read), so they can be checked with bpftool.
 */
function reportKernelIds(tracer: Tracer): void {
  const where = process.env.NETTRACE_KERNEL_IDS;
  if (!where) return;
  try {
    fs.writeFileSync(where, JSON.stringify(tracer.kernelIds) + '\n');
  } catch (e) {
    process.stderr.write(`nettrace: cannot write kernel ids to ${where}: ${(e as Error).message}\n`);
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

function summary(tracer: Tracer, printed: number, byKind: Map<string, number>, notWritten: number, json: boolean): string {
  const s = tracer.stats();
  if (json) {
    const { records, bytes, batches, drops, dropsByKind, missed, evictions, queueDrops } = s;
    const stats = { records, bytes, batches, drops, drops_by_kind: dropsByKind, missed, evictions, queue_drops: queueDrops, not_written: notWritten };
    return JSON.stringify({ type: 'summary', events: printed, by_kind: Object.fromEntries(byKind), ...stats }) + '\n';
  }
  const kinds = [...byKind].map(([k, n]) => `${k} ${n}`).join(', ');
  const missed = s.missed ? `, ${s.missed} missed by the kernel (hook re-entered)` : '';
  const evicted = s.evictions ? `, ${s.evictions} sockets evicted from the kernel's table (owner lost)` : '';
  const unwritten = notWritten ? `, ${notWritten} not written (the reader of the output was behind)` : '';
  return `nettrace: ${printed} events${kinds ? ` (${kinds})` : ''}, ${s.drops} dropped${missed}${evicted}${unwritten}\n`;
}

/** The stream's options: the common ones, the record kinds, and how often a protobuf stream carries a Stats frame. */
type StreamOptions = CommonOptions & { statsMs: number; events?: EventKind[] };

function stream(o: StreamOptions): void {
  const stop = stopRequested(o);
  openOutput(o.output).then(
    (out) => streamTo(o, out, stop),
    (e) => fail(e instanceof Error ? e.message : String(e), 1),
  );
}

function streamTo(o: StreamOptions, out: Output, stop: Promise<void>): void {
  const tracer = start({ ...traceOptions(o), events: o.events });
  const clock = new Clock();
  const json = new JsonLines(clock, new CgroupResolver());
  let printed = 0;
  let notWritten = 0;
  if (o.format === 'text') out.write(HEADER + '\n');
  if (o.format === 'protobuf') out.write(encodeItems([streamHeader('stream')]));
  // a stream that runs for months still tells its reader what was dropped, as it happens
  const stats = (): boolean => out.write(encodeItems([{ ...statsRecord(tracer), outputDrops: notWritten }]));
  const statsTimer = o.format === 'protobuf' ? setInterval(stats, o.statsMs) : undefined;
  let finishing: Promise<void> | undefined;
  let expiry: NodeJS.Timeout | undefined;
  let endLookups = (): void => {};
  const finish = (): Promise<void> =>
    (finishing ??= tracer.stop().then(async () => {
      clearInterval(statsTimer);
      clearInterval(expiry);
      endLookups(); // the queries still unanswered when tracing ended, as timeouts
      if (o.format === 'protobuf') stats();
      await out.close();
      const byKind = new Map([...byCode].map(([code, k]) => [kindName(code), k]));
      process.stderr.write(summary(tracer, printed, byKind, notWritten, o.format === 'json'));
      process.exit(0);
    }));
  const byCode = new Map<number, number>(); // per kind code: a string key per record cost more than the record's line
  // what a record alone does not say (the peers of an unconnected UDP socket's close; with --events dns, the
  // lookups and each event's remote name) goes through event objects; every other record keeps the cursor's path
  const make = new EventMaker(clock, () => tracer.udpPeers(), { dns: o.events?.includes('dns') ?? false });
  const named = make.lookups !== undefined;
  const emit = (e: NettraceEvent, code: number, text: LineBuffer | undefined, events: NettraceEvent[]): void => {
    if (text) text.add(o.format === 'json' ? JSON.stringify(e) : eventLine(e));
    else events.push(e);
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
    printed++;
  };
  const takeLookups = (text: LineBuffer | undefined, events: NettraceEvent[]): number => {
    let n = 0;
    for (const e of make.take()) if (o.count === undefined || printed < o.count) (emit(e, Kind.Dns, text, events), n++);
    return n;
  };
  const lookupsNow = (): void => {
    const text = o.format !== 'protobuf' ? new LineBuffer() : undefined;
    const events: NettraceEvent[] = [];
    const n = takeLookups(text, events);
    if (n > 0 && !out.write(text ? text.take() : encodeItems(events))) notWritten += n;
  };
  expiry = named ? setInterval(() => (make.expire(), lookupsNow()), 250) : undefined;
  endLookups = () => (make.flush(), lookupsNow());
  tracer.onBatch((c) => {
    // lines go straight into one buffer per batch: joined strings of a whole batch kept V8's collector busy most of the time
    const text = o.format !== 'protobuf' ? new LineBuffer() : undefined;
    const events: NettraceEvent[] = [];
    let n = 0;
    make.nextBatch();
    while (c.next()) {
      if (o.count !== undefined && printed >= o.count) break;
      if (named || c.kind === Kind.Dns || isUnconnectedUdpClose(c)) {
        const e = make.event(c);
        n += e ? (emit(e, c.kind, text, events), 1) : takeLookups(text, events);
        continue;
      }
      if (o.format === 'json') json.write(c, text!);
      else if (text) text.add(textLine(c, clock));
      else events.push(toEvent(c, clock));
      byCode.set(c.kind, (byCode.get(c.kind) ?? 0) + 1);
      printed++;
      n++;
    }
    const written = n === 0 || out.write(text ? text.take() : encodeItems(events));
    if (!written) notWritten += n;
    if (o.count !== undefined && printed >= o.count) void finish();
  });
  void Promise.race([stop, out.gone]).then(finish);
}

function flows(argv: string[]): void {
  const { common, values } = parseCommand(argv, {
    listening: { type: 'boolean', short: 'l' },
    all: { type: 'boolean', short: 'a' },
  });
  if (common.help) return void process.stdout.write(FLOWS_USAGE + '\n');
  const o: FlowsOptions = { ...common, listening: (values.listening as boolean) ?? false, all: (values.all as boolean) ?? false };
  const stop = stopRequested(common);
  const output = openOutput(common.output);
  const tracer = start({ ...traceOptions(common), events: [] }); // one snapshot: no records needed
  void stop.then(() => tracer.stop().then(() => process.exit(0)));
  output.then((out) => flowsCommand(o, tracer, out)).then(
    () => process.exit(0),
    (e) => fail(e instanceof Error ? e.message : String(e), 1),
  );
}

/** For the commands that print only to stdout, and `states` only as text or JSON. */
function stdoutOnly(command: string, o: CommonOptions): void {
  if (o.format === 'protobuf' && command === 'states') {
    throw new UsageError('nettrace states prints text or JSON; --format protobuf is for the stream, flows and top');
  }
  if (o.output !== undefined) throw new UsageError(`nettrace ${command} prints to stdout; --output is for the stream and nettrace flows`);
}

function decode(argv: string[]): void {
  let values: { json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    throw new UsageError((e instanceof Error ? e.message : String(e)).split('\n')[0].split('. ')[0]);
  }
  if (values.help) return void process.stdout.write(DECODE_USAGE + '\n');
  if (positionals.length > 1) throw new UsageError(`decode reads one stream, not ${positionals.length}`);
  let input;
  try {
    input = openInput(positionals[0]);
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e), 2);
  }
  process.stdout.on('error', () => process.exit(0)); // the reader went away: nothing left to do
  void decodeStream(input, (text) => process.stdout.write(text), values.json ?? false).then(({ code, message }) => {
    if (message) process.stderr.write(`nettrace: decode: ${message}\n`);
    process.stdout.write('', () => process.exit(code));
  });
}

/** A one-shot command over the flows now: tracer up, run, tracer down; a failure exits 1. */
function oneShot(common: CommonOptions, run: (tracer: Tracer) => Promise<void>): void {
  const stop = stopRequested(common);
  const tracer = start({ ...traceOptions(common), events: [] }); // one snapshot: no records needed
  void stop.then(() => tracer.stop().then(() => process.exit(0)));
  run(tracer).then(
    () => tracer.stop().then(() => process.exit(0)),
    (e) => fail(e instanceof Error ? e.message : String(e), 1),
  );
}

function route(argv: string[]): void {
  const addr = argv[0]?.startsWith('-') ? undefined : argv[0];
  const { common } = parseCommand(addr === undefined ? argv : argv.slice(1));
  if (common.help) return void process.stdout.write(ROUTE_USAGE + '\n');
  checkAddress(addr);
  oneShot(common, (tracer) => routeCommand(addr!, common, tracer));
}

function routes(argv: string[]): void {
  const { common, values } = parseCommand(argv, { all: { type: 'boolean', short: 'a' } });
  if (common.help) return void process.stdout.write(ROUTES_USAGE + '\n');
  oneShot(common, (tracer) => routesCommand((values.all as boolean) ?? false, common, tracer));
}

function states(argv: string[]): void {
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

function top(argv: string[]): void {
  const { common, values } = parseCommand(argv, TOP_OPTIONS);
  if (common.help) return void process.stdout.write(TOP_USAGE + '\n');
  stdoutOnly('top', common);
  const o = topOptions(common, values);
  const stop = stopRequested(common);
  // remote hosts by the names their processes looked up (the dns hook), unless -n asks for addresses only
  const names = values.numeric ? [] : (['dns'] as const);
  const tracer = start({ ...flowTraceOptions(common), events: [...flowTraceOptions(common).events!, ...names] });
  const view = topCommand(o, tracer, (code) => void tracer.stop().then(() => process.exit(code)));
  void stop.then(() => view.quit(0));
}

function serve(argv: string[]): void {
  const { common, values } = parseCommand(argv, SERVE_OPTIONS);
  if (common.help) return void process.stdout.write(SERVE_USAGE + '\n');
  const o = serveOptions(common, values);
  const stop = stopRequested(common);
  const tracer = start({ ...flowTraceOptions(common), steering: o.steering });
  const end = (code: number, message?: string): Promise<never> =>
    tracer.stop().then(() => (message ? fail(message, code) : process.exit(code)));
  serveCommand(o, tracer).then(
    (session) => {
      void Promise.race([stop, tracer.done]).then(() =>
        session.stop().then(() => {
          process.stderr.write(summary(tracer, tracer.stats().records, new Map(), 0, false));
          const failure = tracer.error;
          return failure ? end(1, failure instanceof Error ? failure.message : String(failure)) : end(0);
        }),
      );
    },
    (e) => end(1, e instanceof Error ? e.message : String(e)),
  );
}

function bench(argv: string[]): void {
  const o = parseBench(argv);
  if (!o) return void process.stdout.write(BENCH_USAGE + '\n');
  benchCommand(o).then(
    (code) => process.exit(code),
    (e) => fail(e instanceof NettraceError ? e.message : e instanceof Error ? e.message : String(e), 1),
  );
}

function dns(argv: string[]): void {
  const { common, values } = parseCommand(argv, DNS_OPTIONS);
  if (common.help) return void process.stdout.write(DNS_USAGE(COMMON_HELP) + '\n');
  const o = dnsOptions(common, values);
  const stop = stopRequested(common);
  const tracer = start({ ...traceOptions(common), events: ['dns'], trackSockets: false });
  if (!tracer.dnsEnabled) {
    const why = tracer.hooks.find((h) => h.name === 'dns')?.detail ?? 'not attached';
    return void tracer.stop().then(() => fail(`nettrace dns needs the dns hook, which is off: ${why}`, 1));
  }
  openOutput(common.output).then(
    (out) => {
      const end = dnsCommand(o, tracer, out, (code) => process.exit(code));
      void Promise.race([stop, out.gone, tracer.done]).then(end);
    },
    (e) => void tracer.stop().then(() => fail(e instanceof Error ? e.message : String(e), 1)),
  );
}

function steering(argv: string[]): void {
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

export function main(argv = process.argv.slice(2)): void {
  try {
    const [command, ...rest] = argv;
    if (command === 'bench') return bench(rest);
    if (command === 'flows') return flows(rest);
    if (command === 'states') return states(rest);
    if (command === 'top') return top(rest);
    if (command === 'decode') return decode(rest);
    if (command === 'route') return route(rest);
    if (command === 'routes') return routes(rest);
    if (command === 'serve') return serve(rest);
    if (command === 'steering') return steering(rest);
    if (command === 'dns') return dns(rest);
    const { common, values } = parseCommand(argv, { 'stats-interval': { type: 'string' }, events: { type: 'string', multiple: true } });
    if (common.help) return void process.stdout.write(USAGE + '\n');
    if (common.version) return void process.stdout.write(versionLine() + '\n');
    const events = eventKinds(values.events as string[] | undefined);
    stream({ ...common, events, statsMs: seconds('--stats-interval', values['stats-interval']) ?? 10000 });
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message} (see nettrace --help)`, 2);
    throw e;
  }
}
