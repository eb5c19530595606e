/** `nettrace`: the live stream. */
import { RecordCursor } from '../decode';
import { NettraceError } from '../errors';
import { Clock, toEvent } from '../events';
import { Tracer } from '../tracer';
import { CliOptions, parseCli, UsageError, USAGE } from './args';
import { HEADER, kindName, textLine } from './render';

const VERSION: string = require('../../../package.json').version;

function fail(message: string, code: number): never {
  process.stderr.write(`nettrace: ${message}\n`);
  process.exit(code);
}

function filterFor(o: CliOptions): ((c: RecordCursor) => boolean) | undefined {
  const tests: ((c: RecordCursor) => boolean)[] = [];
  if (o.pid !== undefined) tests.push((c) => c.hasOwner && c.pid === o.pid);
  if (o.comm !== undefined) {
    const name = Buffer.from(o.comm, 'latin1');
    tests.push((c) => c.hasOwner && c.commEquals(name));
  }
  if (o.port !== undefined) tests.push((c) => c.sport === o.port || c.dport === o.port);
  if (o.families.length === 1) tests.push((c) => c.family === o.families[0]);
  if (tests.length === 0) return undefined;
  return (c) => tests.every((t) => t(c));
}

export function main(argv = process.argv.slice(2)): void {
  let opts: CliOptions;
  try {
    opts = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message} (see nettrace --help)`, 2);
    throw e;
  }
  if (opts.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (opts.version) {
    process.stdout.write(`nettrace ${VERSION}\n`);
    return;
  }

  let tracer: Tracer;
  try {
    tracer = Tracer.start({ filter: filterFor(opts) });
  } catch (e) {
    fail(e instanceof NettraceError ? e.message : String(e), 1);
  }
  for (const h of tracer.hooks) {
    if (h.status === 'fallback' || h.status === 'unavailable') {
      process.stderr.write(`nettrace: ${h.name} events ${h.status === 'fallback' ? 'use a fallback' : 'are unavailable'}: ${h.detail}\n`);
    }
  }

  const clock = new Clock();
  const byKind = new Map<string, number>();
  let printed = 0;
  let out: string[] = [];
  if (!opts.json) process.stdout.write(HEADER + '\n');

  const finish = async (): Promise<void> => {
    await tracer.stop();
    flush();
    const s = tracer.stats();
    const kinds = [...byKind].map(([k, n]) => `${k} ${n}`).join(', ');
    process.stderr.write(`nettrace: ${printed} events${kinds ? ` (${kinds})` : ''}, ${s.drops} dropped${s.missed ? `, ${s.missed} missed by the kernel (hook re-entered)` : ''}\n`);
    process.exit(0);
  };
  const flush = (): void => {
    if (out.length) process.stdout.write(out.join('\n') + '\n');
    out = [];
  };

  tracer.onBatch((c) => {
    while (c.next()) {
      if (opts.count !== undefined && printed >= opts.count) break;
      out.push(opts.json ? JSON.stringify(toEvent(c, clock)) : textLine(c, clock));
      const k = kindName(c.kind);
      byKind.set(k, (byKind.get(k) ?? 0) + 1);
      printed++;
    }
    flush();
    if (opts.count !== undefined && printed >= opts.count) void finish();
  });

  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') void tracer.stop().then(() => process.exit(0));
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void finish());
  if (opts.durationMs !== undefined) setTimeout(() => void finish(), opts.durationMs).unref();
}
