/**
 * The library's entry point: starts the kernel side, receives batches from
 * the addon, and offers them as a cursor (fast, no objects), as an async
 * iterable of typed events, or as flow snapshots (flows/flow-snapshots.ts,
 * which reads the tracer as a FlowSource). Its options and counters are
 * declared in trace-options.ts.
 */
import { RecordCursor } from './record-cursor';
import { fromNative, NettraceError } from './errors';
import { Clock, NettraceEvent } from './events';
import { EventMaker } from './enrich';
import { DnsLookups, DnsStats } from './dns/lookups';
import { FlowEnricher } from './flows/flow-source';
import { FlowSnapshotStreams, SnapshotOptions } from './flows/flow-snapshots';
import { FlowSnapshot } from './flows/rollup';
import { ResolvedNetns, resolveNetns } from './netns-target';
import { KernelIds, native, NativeHook, NativeTracer } from './native';
import { SteeringEnricher } from './steering/steering-enricher';
import { RawSteering } from './steering/types';
import { TraceOptions, TracerStats } from './trace-options';

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
  private readonly flowSnapshots = new FlowSnapshotStreams();
  private finished = false;
  private failure: unknown;
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));
  private dnsLookups: DnsLookups | undefined;

  /** The network namespace this tracer is scoped to (TraceOptions.netns), resolved. */
  readonly netns: ResolvedNetns | undefined;

  private constructor(private readonly options: TraceOptions) {
    this.maxQueued = options.maxQueuedBatches ?? 64;
    this.cursor.filter = options.filter;
    const { ringBytes, flushMs, batchBytes, maxSockets, disable, steering, events, trackSockets, countStates } = options;
    const ns = (this.netns = options.netns === undefined ? undefined : resolveNetns(options.netns));
    const kernelFilter = ns ? { ...options.kernelFilter, netns: ns.inode } : options.kernelFilter;
    try {
      const open = { ringBytes, flushMs, batchBytes, maxSockets, disable, kernelFilter, steering, events, trackSockets, countStates, netnsPath: ns?.path };
      this.handle = native().NativeTracer.open(open, ([batch, last]) =>
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

  /** Ids of the BPF programs, links and maps this tracer holds (see `bpftool prog/link/map show id N`). */
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
    return fromAddon(() => this.handle.snapshot());
  }

  /** Every UDP socket of this network namespace now, as packed struct nt_udp_flow (see flows/snapshot). */
  snapshotUdp(): Buffer {
    return fromAddon(() => this.handle.snapshotUdp());
  }

  /** Whether the DNS hook is attached (events included dns): lookups, and names on flows. */
  get dnsEnabled(): boolean {
    return this.hooks.some((h) => h.name === 'dns' && (h.status === 'attached' || h.status === 'fallback'));
  }

  /** Whether the receive-steering hooks are attached. */
  get steeringEnabled(): boolean {
    // what the loader attached, not what was asked: a kernel without the hook leaves it off
    return this.hooks.some((h) => h.name === 'steering' && (h.status === 'attached' || h.status === 'fallback'));
  }

  /** The receive-steering counters now, per socket, as the kernel keeps them (needs the steering option). */
  steering(): RawSteering {
    return fromAddon(() => this.handle.steering());
  }

  /**
   * TCP transitions the kernel counted since tracing began (needs countStates):
   * `counts[old * 16 + new]`, states numbered as the kernel numbers them (see tcp.ts).
   */
  stateCounts(): number[] {
    return fromAddon(() => this.handle.stateCounts());
  }

  /** Per remote endpoint traffic of unconnected UDP sockets, as packed (nt_udp_peer, nt_udp_peer_bytes) pairs. */
  udpPeers(): Buffer {
    return fromAddon(() => this.handle.udpPeers());
  }

  /**
   * What the kernel counted of DNS: messages it copied to the ring, and IP fragments of
   * DNS messages it could not copy; with `lookups`, what the iterator's pairing counted.
   */
  dnsStats(): { messages: number; fragments: number; lookups: DnsStats | null } {
    const [messages, fragments] = fromAddon(() => this.handle.dnsCounts());
    return { messages, fragments, lookups: this.dnsLookups ? { ...this.dnsLookups.stats } : null };
  }

  /** Lets the kernel forget the steering counters of these sockets (closed and reported). */
  steeringForget(cookies: number[]): void {
    if (cookies.length > 0) this.handle.steeringForget(cookies);
  }

  stats(): TracerStats {
    const evictions = this.flowSnapshots.evictions();
    const counts = { queueDrops: this.queueDrops, snapshotDrops: this.flowSnapshots.drops, flowEvictions: evictions.flows, nameEvictions: evictions.names };
    return { ...this.handle.stats(), ...counts };
  }

  /** What each FlowMonitor over this tracer adds at a refresh besides the snapshot: steering figures when those hooks run. */
  flowEnrichers(): FlowEnricher[] {
    return this.steeringEnabled ? [new SteeringEnricher(this)] : [];
  }

  /**
   * The flow table every `intervalMs`, with rollups per process, remote host and both: one flow per
   * socket, kept from this tracer's events and a kernel snapshot of every socket at each interval.
   * A consumer that is behind gets the newest snapshot; the ones it missed count in stats().snapshotDrops.
   * Ends when the tracer stops.
   */
  snapshots(options: SnapshotOptions = {}): AsyncGenerator<FlowSnapshot> {
    return this.flowSnapshots.stream(this, {
      done: this.stopped,
      ending: () => this.finished || this.stopping !== undefined,
      failure: () => this.failure,
      fail: (e) => {
        this.failure ??= e;
        void this.stop();
      },
    }, options);
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
    const make = new EventMaker(this.clock, () => this.udpPeers(), { dns: this.dnsEnabled, dnsTimeoutMs: this.options.dnsTimeoutMs });
    this.dnsLookups = make.lookups;
    const dns = make.lookups !== undefined;
    try {
      for (;;) {
        const batch = this.queue.shift();
        if (batch) {
          cursor.reset(batch);
          make.nextBatch();
          while (cursor.next()) {
            const e = make.event(cursor);
            if (e) yield e;
            else yield* make.take();
          }
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.finished) {
          make.flush();
          yield* make.take();
          return;
        }
        await new Promise<void>((resolve) => {
          this.wakeIterator = resolve;
          // timeouts are reported while no batch arrives too
          if (dns) setTimeout(resolve, 100).unref();
        });
        make.expire();
        yield* make.take();
      }
    } finally {
      this.iterating = false;
      this.queue.length = 0;
      // Leaving the loop early (break, return, a throw in its body) ends the trace:
      // nothing is left attached for a consumer that has gone.
      void this.stop();
    }
  }

  private receive(batch: Buffer, last: boolean): void {
    // handed back from the next turn of the event loop, so timers and sockets run between batches
    if (!last) setImmediate(this.release);
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

  private readonly release = (): void => this.handle.release();

  private enqueue(batch: Buffer): void {
    if (this.queue.length < this.maxQueued) {
      this.queue.push(batch);
      return;
    }
    // count what the consumer lost: the records its filter would have passed
    const c = new RecordCursor();
    c.filter = this.options.filter;
    c.reset(batch);
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

/** Calls the addon, its errors as NettraceError. */
function fromAddon<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw fromNative(e);
  }
}
