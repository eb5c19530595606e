/**
 * The flow table every interval, with rollups per process, remote host and
 * both (Tracer.snapshots()): one FlowMonitor per stream, refreshed by a timer.
 * A consumer that is behind gets the newest snapshot; the ones it missed are
 * counted, and so are the flows and names the streams' tables let go.
 */
import { NettraceError } from '../errors';
import { CgroupResolver } from './cgroups';
import { Flow } from './flow';
import { FlowMonitor } from './flow-monitor';
import { FlowSource } from './flow-source';
import { FlowTableOptions } from './flow-table';
import { NatResolver } from './nat';
import { FlowSnapshot, flowSnapshot } from './rollup';

export interface SnapshotOptions extends FlowTableOptions {
  /** Milliseconds between snapshots, at least 100 (default 1000). */
  intervalMs?: number;
  /** Keep only the flows this accepts (rollups are over the kept flows). */
  filter?: (f: Flow) => boolean;
}

/** How the tracing behind a stream goes: a stream ends with it, and ends it when a refresh fails. */
export interface TraceLife {
  /** Resolves once tracing has ended. */
  readonly done: Promise<void>;
  /** Whether tracing has ended or is ending: no snapshot is taken then. */
  ending(): boolean;
  /** The error that ended tracing, if one did. */
  failure(): unknown;
  /** Ends tracing with this error (kept unless an earlier one ended it). */
  fail(e: unknown): void;
}

/** The snapshot streams of one tracer, and what they dropped. */
export class FlowSnapshotStreams {
  /** Snapshots replaced by a newer one before a slow consumer took them. */
  drops = 0;
  private readonly monitors = new Set<FlowMonitor>();
  /** Evictions of the tables of streams that have ended. */
  private retiredEvictions = 0;

  /** Flows the streams' tables dropped to stay within their cap, and addresses their DNS name maps dropped before their TTL ended. */
  evictions(): { flows: number; names: number } {
    let flows = this.retiredEvictions;
    let names = 0;
    for (const m of this.monitors) {
      flows += m.table.evictions;
      names += m.names?.evictions ?? 0;
    }
    return { flows, names };
  }

  /** Snapshots of `source` every `intervalMs` until tracing ends. */
  async *stream(source: FlowSource, life: TraceLife, options: SnapshotOptions = {}): AsyncGenerator<FlowSnapshot> {
    const intervalMs = options.intervalMs ?? 1000;
    if (!(intervalMs >= 100)) throw new NettraceError('EINVAL', `snapshot interval ${intervalMs} ms is below 100 ms`);
    const monitor = new FlowMonitor(source, options, undefined, { containers: new CgroupResolver(), nat: new NatResolver() });
    this.monitors.add(monitor);
    let latest: FlowSnapshot | undefined;
    let wake: (() => void) | undefined;
    const take = (): void => {
      if (life.ending()) return;
      const now = Date.now();
      monitor.refresh(now);
      const flows = monitor.table.flows();
      if (latest) this.drops++;
      latest = flowSnapshot(options.filter ? flows.filter(options.filter) : flows, now);
      wake?.();
    };
    monitor.refresh(); // the baseline: every snapshot has rates over a whole interval
    const timer = setInterval(() => {
      try {
        take();
      } catch (e) {
        life.fail(e);
      }
    }, intervalMs);
    void life.done.then(() => wake?.());
    try {
      for (;;) {
        if (latest) {
          const s = latest;
          latest = undefined;
          yield s;
          continue;
        }
        const failure = life.failure();
        if (failure) throw failure;
        if (life.ending()) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      clearInterval(timer);
      monitor.close();
      this.monitors.delete(monitor);
      this.retiredEvictions += monitor.table.evictions;
    }
  }
}
