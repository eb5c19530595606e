/** `nettrace` with no command: the live stream, one line (or JSON object, or protobuf frame) per record. */
import { versionLine } from '../../build-info';
import { EventMaker } from '../../enrich';
import { Clock, NettraceEvent, toEvent } from '../../events';
import { CgroupResolver } from '../../flows/cgroups';
import { isUnconnectedUdpClose } from '../../flows/close-peers';
import { Kind } from '../../layout';
import { encodeItems } from '../../proto/stream';
import { EventKind } from '../../trace-options';
import { JsonLines, LineBuffer } from '../json-line';
import { fail, start, stopRequested, summary } from '../lifecycle';
import { COMMON_HELP, CommonOptions, eventKinds, parseCommand, seconds, traceOptions } from '../options';
import { openOutput, Output } from '../output';
import { statsRecord, streamHeader } from '../protobuf';
import { eventLine, HEADER, kindName, textLine } from '../render';

export const USAGE = `Usage: nettrace [options] [FILTER]
       nettrace flows [-l|-a] [options] [FILTER]
       nettrace states [options] [FILTER]
       nettrace top [options] [FILTER]
       nettrace decode [--json] [FILE|-]
       nettrace route ADDR [options] [FILTER]
       nettrace routes [-a] [options] [FILTER]
       nettrace serve [--listen HOST:PORT] [--otlp URL] [options] [FILTER]
       nettrace bench churn [options]
       nettrace steering [options] [FILTER]
       nettrace dns [--timeout MS] [options] [FILTER]

Streams every TCP connect, accept, state change and close, and every UDP
socket's open and close (with its datagram and byte totals and drops), on this
machine, one line each, attributed to the process that owns the socket.

Commands:
  flows               every TCP and UDP socket now, as ss -tuanp shows them (see nettrace flows --help)
  states              the TCP state histogram and transitions per second, live (see nettrace states --help)
  top                 network use per process, remote host and connection, live (see nettrace top --help)
  decode              print a --format protobuf stream as text or JSON (see nettrace decode --help)
  route ADDR          the route to ADDR as ip route get says it, and the flows taking it
  routes              the routing table (ip route, route -n) with flows and bytes per route
  serve               metrics for Prometheus (/metrics) and OTLP, until stopped (see nettrace serve --help)
  bench churn         connection churn from native threads, untraced and traced (see nettrace bench --help)
  steering            which CPUs process each flow's packets and which its reader runs on (RPS/RFS), live
  dns                 every DNS lookup: process, server, name, type, rcode, answers, latency, timeouts

Options:
      --events KINDS  the record kinds to stream, a comma list of connect, accept,
                      state, close and udp (default all); the kernel makes no
                      record of the others. --events close is tcplife,
                      --events connect tcpconnect and tcpconnlat, --events accept
                      tcpaccept, --events state tcpstates
${COMMON_HELP}
  -d, --duration SEC  stop after SEC seconds
  -c, --count N       stop after N events
      --stats-interval SEC  with --format protobuf, a Stats frame every SEC seconds (default 10) and at the end
  -V, --version       show the version

Stop with Ctrl-C: a summary of events and drops goes to stderr.`;

/** The stream's options: the common ones, the record kinds, and how often a protobuf stream carries a Stats frame. */
type StreamOptions = CommonOptions & { statsMs: number; events?: EventKind[] };

/** `nettrace [options] [FILTER]`, and `--help` and `--version`. */
export function runStream(argv: string[]): void {
  const { common, values } = parseCommand(argv, { 'stats-interval': { type: 'string' }, events: { type: 'string', multiple: true } });
  if (common.help) return void process.stdout.write(USAGE + '\n');
  if (common.version) return void process.stdout.write(versionLine() + '\n');
  const events = eventKinds(values.events as string[] | undefined);
  stream({ ...common, events, statsMs: seconds('--stats-interval', values['stats-interval']) ?? 10000 });
}

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
