/**
 * What every tracing command does around its own work: raise its priority,
 * start the tracer and say what it goes without, stop on a signal, and end
 * with one line on stderr and an exit code.
 */
import fs from 'node:fs';
import os from 'node:os';
import { NettraceError } from '../errors';
import { Tracer } from '../tracer';
import { TraceOptions } from '../trace-options';
import { hookReport } from './hooks';
import { CommonOptions, traceOptions } from './options';

/** One line on stderr and the exit code: how every command fails. */
export function fail(message: string, code: number): never {
  process.stderr.write(`nettrace: ${message}\n`);
  process.exit(code);
}

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

/** Starts the tracer, or exits 1 with the one line that says why it could not. */
export function start(options: TraceOptions): Tracer {
  const notBoosted = boostPriority();
  try {
    const tracer = Tracer.start(options);
    if (notBoosted) process.stderr.write(notBoosted); // said only once tracing runs: a failed start has its own one line
    for (const line of hookReport(tracer.hooks)) process.stderr.write(`nettrace: ${line}\n`);
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
export function stopRequested(o: CommonOptions): Promise<void> {
  return new Promise((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => resolve());
    if (o.durationMs !== undefined) setTimeout(resolve, o.durationMs).unref();
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') resolve();
    });
  });
}

/** A one-shot command over the flows now: tracer up, run, tracer down; a failure exits 1. */
export function oneShot(common: CommonOptions, run: (tracer: Tracer) => Promise<void>): void {
  const stop = stopRequested(common);
  const tracer = start({ ...traceOptions(common), events: [] }); // one snapshot: no records needed
  void stop.then(() => tracer.stop().then(() => process.exit(0)));
  run(tracer).then(
    () => tracer.stop().then(() => process.exit(0)),
    (e) => fail(e instanceof Error ? e.message : String(e), 1),
  );
}

/** The last line on stderr: what was printed, and everything lost on the way (dropped, missed, evicted, not written). */
export function summary(tracer: Tracer, printed: number, byKind: Map<string, number>, notWritten: number, json: boolean): string {
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
