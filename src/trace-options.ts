/**
 * What a tracer can be asked for (TraceOptions, the hooks and record kinds by
 * name) and what it counts (TracerStats): apart from the Tracer, so that what
 * only names them (the CLI's option parsing, the protobuf codec, top's fakes)
 * need not import the Tracer itself.
 */
import { RecordCursor } from './record-cursor';
import { KernelFilter, NativeStats } from './native';

/**
 * What `disable` can leave off: a hook (`state`: transitions, connects and
 * closes; `accept`; `snapshot`: the iter/tcp and iter/udp socket lists; `udp`: UDP sockets; `dns`: DNS messages), or a kernel feature
 * (`fexit`: accept then attaches through its syscall tracepoints instead).
 */
export type HookName = 'state' | 'accept' | 'snapshot' | 'udp' | 'dns' | 'fexit';
export const HOOK_NAMES: readonly HookName[] = ['state', 'accept', 'snapshot', 'udp', 'dns', 'fexit'];

/**
 * Record kinds the kernel can send. Kinds not asked for are never put in the
 * ring: `close` alone is tcplife, `connect` tcpconnect and tcpconnlat,
 * `accept` tcpaccept, `state` tcpstates.
 */
export type EventKind = 'connect' | 'accept' | 'state' | 'close' | 'udp' | 'dns';
export const EVENT_KINDS: readonly EventKind[] = ['connect', 'accept', 'state', 'close', 'udp', 'dns'];

export interface TraceOptions {
  /**
   * The record kinds to deliver (default all of them but `dns`, whose hooks run
   * per packet: ask for it). `dns` records reach the iterator as one DnsEvent per
   * query (src/dns/lookups), and onBatch listeners as raw nt_dns records.
   */
  events?: EventKind[];
  /** A DNS query unanswered this long is a timeout event (default 5000 ms). */
  dnsTimeoutMs?: number;
  /**
   * Keep the kernel's socket table (default true): owners, lifetimes and byte
   * bases, which connect, accept, state and close records and the snapshots'
   * owners and byte counts need. Off, only UDP records and counters remain.
   */
  trackSockets?: boolean;
  /**
   * Count every TCP state transition in the kernel, per pair of states (see
   * stateCounts()); with `events` left without `state`, no record per transition
   * exists. Only the kernel filter's family and port conditions apply to the counts.
   */
  countStates?: boolean;
  /** Ring buffer bytes, a power of two (default 16 MiB). */
  ringBytes?: number;
  /** Longest a record waits before delivery, 1 to 50 ms (default 10). */
  flushMs?: number;
  /** A batch is delivered once it holds this many bytes, even before flushMs: 4 KiB to 64 MiB (default 4 MiB). */
  batchBytes?: number;
  /** Sockets the kernel side tracks at once (default 65536, LRU beyond). */
  maxSockets?: number;
  /** Hooks or kernel features to leave off, as if the kernel lacked them. */
  disable?: HookName[];
  /**
   * Attach the per-packet receive-steering hooks (see steering()). They cost
   * something on every received TCP segment and read, so they are off by default.
   */
  steering?: boolean;
  /**
   * Conditions every wanted record meets, checked in the kernel so that other
   * sockets never reach the ring: family, owner pids (at most 1024), ports on
   * either side (at most 1024). A record with no known owner fails a pid condition.
   */
  kernelFilter?: KernelFilter;
  /**
   * Only sockets of this network namespace, decided in the kernel: a name under
   * /run/netns, a path to a namespace file, or its inode. Snapshots list its sockets.
   */
  netns?: string | number;
  /** Keep only records this accepts; it sees the cursor, before any object exists. */
  filter?: (c: RecordCursor) => boolean;
  /**
   * Batches the async iterator holds for a consumer that is behind. Past it,
   * new batches are dropped and their records counted in stats().queueDrops,
   * so memory stays bounded. Default 64 (a batch is at most batchBytes plus one record).
   */
  maxQueuedBatches?: number;
}

export interface TracerStats extends NativeStats {
  /** Records the iterator dropped because its consumer was behind. */
  queueDrops: number;
  /** Snapshots replaced by a newer one before a slow consumer took them. */
  snapshotDrops: number;
  /** Flows the snapshots' flow tables dropped to stay within their cap. */
  flowEvictions: number;
  /** Addresses the snapshots' DNS name maps dropped to stay within their cap before their TTL ended. */
  nameEvictions: number;
}
