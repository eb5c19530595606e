/**
 * The library's entry point: starts the kernel side, receives batches from
 * the addon, and offers them as a cursor (fast, no objects) or as an async
 * iterable of typed events.
 */
import { RecordCursor } from './decode';
import { fromNative, NettraceError } from './errors';
import { Clock, NettraceEvent, toEvent } from './events';
import { KernelFilter, KernelIds, native, NativeHook, NativeStats, NativeTracer } from './native';

export type HookName = 'accept' | 'udp';

export interface TraceOptions {
  /** Ring buffer bytes, a power of two (default 16 MiB). */
  ringBytes?: number;
  /** Longest a record waits before delivery, 1 to 50 ms (default 10). */
  flushMs?: number;
  /** Sockets the kernel side tracks at once (default 65536, LRU beyond). */
  maxSockets?: number;
  /** Hooks to leave off. */
  disable?: HookName[];
  /**
   * Conditions every wanted record meets, checked in the kernel so that other
   * sockets never reach the ring: family, owner pids (at most 1024), ports on
   * either side (at most 1024). A record with no known owner fails a pid condition.
   */
  kernelFilter?: KernelFilter;
  /** Keep only records this accepts; it sees the cursor, before any object exists. */
  filter?: (c: RecordCursor) => boolean;
  /**
   * Batches the async iterator holds for a consumer that is behind. Past it,
   * new batches are dropped and their records counted in stats().queueDrops,
   * so memory stays bounded. Default 64 (a batch is at most 4 MiB).
   */
  maxQueuedBatches?: number;
}

export interface TracerStats extends NativeStats {
  /** Records the iterator dropped because its consumer was behind. */
  queueDrops: number;
}

type BatchListener = (records: RecordCursor) => void;

export class Tracer implements AsyncIterable<NettraceEvent> {
  private readonly handle: NativeTracer;
  private readonly listeners = new Set<BatchListener>();
  private readonly cursor = new RecordCursor();
  private readonly clock = new Clock();
  private readonly queue: Buffer[] = [];
  private readonly maxQueued: number;
  private iterating = false;
  private wakeIterator: (() => void) | undefined;
  private queueDrops = 0;
  private finished = false;
  private failure: unknown;
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));

  private constructor(private readonly options: TraceOptions) {
    this.maxQueued = options.maxQueuedBatches ?? 64;
    this.cursor.filter = options.filter;
    const { ringBytes, flushMs, maxSockets, disable, kernelFilter } = options;
    try {
      this.handle = native().NativeTracer.open({ ringBytes, flushMs, maxSockets, disable, kernelFilter }, ([batch, last]) =>
        this.receive(batch, last),
      );
    } catch (e) {
      throw e instanceof NettraceError ? e : fromNative(e);
    }
  }

  /** Loads and attaches nettrace's BPF programs; throws NettraceError when it cannot. */
  static start(options: TraceOptions = {}): Tracer {
    return new Tracer(options);
  }

  /** What each hook attached to, or why it did not. */
  get hooks(): NativeHook[] {
    return this.handle.hooks;
  }

  /** Ids of the BPF programs and links this tracer attached (see `bpftool prog show`). */
  get kernelIds(): KernelIds {
    return this.handle.kernelIds;
  }

  /**
   * Calls `fn` once per batch with a cursor over its records (`while (c.next())`).
   * The cursor is reused: copy what you keep. Returns an unsubscribe function.
   */
  onBatch(fn: BatchListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Every TCP socket of this network namespace now, as packed struct nt_flow (see flows/snapshot). */
  snapshot(): Buffer {
    try {
      return this.handle.snapshot();
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Every UDP socket of this network namespace now, as packed struct nt_udp_flow (see flows/snapshot). */
  snapshotUdp(): Buffer {
    try {
      return this.handle.snapshotUdp();
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Per remote endpoint traffic of unconnected UDP sockets, as packed (nt_udp_peer, nt_udp_peer_bytes) pairs. */
  udpPeers(): Buffer {
    try {
      return this.handle.udpPeers();
    } catch (e) {
      throw fromNative(e);
    }
  }

  stats(): TracerStats {
    return { ...this.handle.stats(), queueDrops: this.queueDrops };
  }

  /** Detaches everything and resolves once the last batch is delivered. Safe to call twice. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.handle.stop();
      this.stopping = this.stopped;
    }
    return this.stopping;
  }

  /** Resolves when tracing has ended, by stop() or by a failure in a listener. */
  get done(): Promise<void> {
    return this.stopped;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<NettraceEvent> {
    if (this.iterating) throw new Error('a Tracer can be iterated by one consumer at a time');
    this.iterating = true;
    const cursor = new RecordCursor();
    cursor.filter = this.options.filter;
    try {
      for (;;) {
        const batch = this.queue.shift();
        if (batch) {
          cursor.reset(batch);
          while (cursor.next()) yield toEvent(cursor, this.clock);
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.finished) return;
        await new Promise<void>((resolve) => (this.wakeIterator = resolve));
      }
    } finally {
      this.iterating = false;
      this.queue.length = 0;
    }
  }

  private receive(batch: Buffer, last: boolean): void {
    try {
      if (batch.length > 0) {
        for (const fn of this.listeners) fn(this.cursor.reset(batch));
        if (this.iterating) this.enqueue(batch);
      }
    } catch (e) {
      // A throwing listener must not unwind into the addon: end tracing and report it.
      this.failure ??= e;
      this.handle.stop();
    }
    if (last) {
      this.finished = true;
      this.resolveStopped();
    }
    this.wakeIterator?.();
    this.wakeIterator = undefined;
  }

  private enqueue(batch: Buffer): void {
    if (this.queue.length < this.maxQueued) {
      this.queue.push(batch);
      return;
    }
    const c = new RecordCursor().reset(batch);
    while (c.next()) this.queueDrops++;
  }

  /** The error a listener threw, if one ended tracing. */
  get error(): unknown {
    return this.failure;
  }
}

/** Starts tracing: `for await (const ev of trace()) ...`. */
export function trace(options: TraceOptions = {}): Tracer {
  return Tracer.start(options);
}
