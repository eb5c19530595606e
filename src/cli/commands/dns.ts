/** `nettrace dns`: every DNS lookup a process makes, one line (or JSON object) per query. */
import { Clock, DnsEvent } from '../../events';
import { DnsLookups } from '../../dns/lookups';
import { Kind } from '../../layout';
import { Tracer } from '../../tracer';
import { fail, start, stopRequested } from '../lifecycle';
import { COMMON_HELP, CommonOptions, integer, parseCommand, traceOptions } from '../options';
import { openOutput, Output } from '../output';
import { eventLine, HEADER } from '../render';
import { streamHeader } from '../protobuf';
import { encodeItems } from '../../proto/stream';

export const DNS_OPTIONS = { timeout: { type: 'string' } } as const;

export const DNS_USAGE = (common: string): string => `Usage: nettrace dns [--timeout MS] [options] [FILTER]

Every DNS query a process sends to a port 53 (over UDP or TCP, to any server,
loopback stub resolvers included) and its answer, one line per query (or
JSON object, or protobuf Event with a Dns body): the
process, the server, the name and type asked, the rcode, the CNAME chain and
addresses answered, and the time from query to answer. A query with no
answer within the timeout is reported as a timeout. Messages that cannot be
read (malformed, cut, split across TCP segments) are counted in the summary.

Options:
      --timeout MS    report a query unanswered after MS milliseconds as a timeout (default 5000)
  -d, --duration SEC  stop after SEC seconds
  -c, --count N       stop after N lookups
${common}`;

export interface DnsOptions extends CommonOptions {
  timeoutMs: number;
}

export function dnsOptions(common: CommonOptions, values: Record<string, unknown>): DnsOptions {
  return { ...common, timeoutMs: integer('--timeout', values.timeout, 1, 3_600_000) ?? 5000 };
}

/** Prints lookups as they complete; returns a function that ends the command (flushing pending queries as timeouts). */
export function dnsCommand(o: DnsOptions, tracer: Tracer, out: Output, done: (code: number) => void): () => void {
  const clock = new Clock();
  let printed = 0;
  let notWritten = 0;
  let ended = false;
  const print = (e: DnsEvent): void => {
    if (ended || (o.count !== undefined && printed >= o.count)) return;
    printed++;
    const data = o.format === 'protobuf' ? encodeItems([e]) : (o.format === 'json' ? JSON.stringify(e) : eventLine(e)) + '\n';
    if (!out.write(data)) notWritten++;
    if (o.count !== undefined && printed >= o.count) end();
  };
  const lookups = new DnsLookups(print, { timeoutMs: o.timeoutMs });
  if (o.format === 'text') out.write(HEADER + '\n');
  if (o.format === 'protobuf') out.write(encodeItems([streamHeader('dns')]));
  tracer.onBatch((c) => {
    while (c.next()) if (c.kind === Kind.Dns) lookups.add(c, clock);
  });
  const timer = setInterval(() => lookups.expire(Number(process.hrtime.bigint())), 100);
  const end = (): void => {
    if (ended) return;
    clearInterval(timer);
    const kernel = tracer.dnsStats(); // the kernel's maps go with the tracer
    void tracer.stop().then(async () => {
      lookups.flush();
      ended = true;
      await out.close();
      const drops = tracer.stats().dropsByKind.dns;
      const s = lookups.stats;
      if (o.format === 'json') {
        process.stderr.write(JSON.stringify({ type: 'summary', lookups: printed, ...s, kernel_messages: kernel.messages, fragments: kernel.fragments, drops, not_written: notWritten }) + '\n');
      } else {
        process.stderr.write(
          `nettrace: ${printed} lookups (${s.answered} answered, ${s.timeouts} timed out, ${s.retries} retried), ` +
            `${drops} messages dropped, ${kernel.fragments} fragmented, ${s.malformed} malformed, ${s.cut} cut, ${s.partial} partial, ` +
            `${s.unmatched} unmatched${notWritten ? `, ${notWritten} not written` : ''}\n`,
        );
      }
      done(0);
    });
  };
  return end;
}

/** `nettrace dns [--timeout MS] [options] [FILTER]`: exits 1 when the dns hook is off. */
export function runDns(argv: string[]): void {
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
