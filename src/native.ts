/** The Rust addon, built by `npm run build:native` into native/. */
import path from 'node:path';
import { NettraceError } from './errors';
import { RawSteering } from './steering/types';

export interface NativeHook {
  name: string;
  /** `unneeded`: nothing the tracer was asked for needs it, so it was not attached. */
  status: 'attached' | 'fallback' | 'disabled' | 'unavailable' | 'unneeded';
  detail: string;
}

export interface NativeStats {
  records: number;
  bytes: number;
  /** Bytes the kernel has put in the ring (its producer position), record headers and padding included. */
  ringProduced: number;
  batches: number;
  /** Records the ring buffer could not take. */
  drops: number;
  /** The same drops by record kind. */
  dropsByKind: { state: number; connect: number; accept: number; close: number; udp: number; dns: number };
  /** Hook runs the kernel skipped because the hook was already running on that CPU. */
  missed: number;
  /** Sockets the kernel-side table (LRU, maxSockets) dropped to make room; their later records lack an owner. */
  evictions: number;
  /**
   * The kernel's own count of hook runs (bpf_prog_info.run_cnt), kept only while
   * kernel.bpf_stats_enabled is on (or a BPF_ENABLE_STATS descriptor is open); final after stop().
   */
  hookRuns: { state: number; accept: number };
}

export interface KernelFilter {
  family?: 4 | 6;
  pids?: number[];
  ports?: number[];
  /** Inode of the network namespace whose sockets are wanted (set from TraceOptions.netns). */
  netns?: number;
  /** cgroup v2 ids (directory inode numbers under the v2 mount). */
  cgroups?: number[];
}

export interface NativeOptions {
  kernelFilter?: KernelFilter;
  ringBytes?: number;
  flushMs?: number;
  maxSockets?: number;
  disable?: string[];
  batchBytes?: number;
  steering?: boolean;
  events?: string[];
  trackSockets?: boolean;
  countStates?: boolean;
  /** A file of kernelFilter.netns, entered to read socket snapshots. */
  netnsPath?: string;
}

export interface KernelIds {
  programs: number[];
  links: number[];
  maps: number[];
}

export interface NativeTracer {
  /** Hands a batch back once read: at most two are out at once. */
  release(): void;
  stop(): void;
  snapshot(): Buffer;
  snapshotUdp(): Buffer;
  udpPeers(): Buffer;
  stateCounts(): number[];
  /** [DNS messages the kernel copied to the ring, IP fragments of DNS messages it could not copy]. */
  dnsCounts(): number[];
  stats(): NativeStats;
  steering(): RawSteering;
  steeringForget(cookies: number[]): void;
  readonly hooks: NativeHook[];
  readonly kernelIds: KernelIds;
}

/** One route as the kernel gave it (numbers for table, protocol, scope and type, as in <linux/rtnetlink.h>). */
export interface NativeRoute {
  family: 4 | 6;
  /** The prefix; "0.0.0.0"/"::" with dstLen 0 for a default route. */
  dst: string;
  dstLen: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  ifindex?: number;
  ifname?: string;
  gateway?: string;
  prefsrc?: string;
  metric?: number;
  nexthops: { gateway?: string; ifindex: number }[];
}

export interface RouteQuery {
  netns: number;
  /** /proc/PID/ns/net of the namespace's owners, tried in turn (unused for nettrace's own namespace). */
  nsPaths: string[];
  daddr: string;
}

/** `route`: what `ip route get` says; `matched`: the FIB entry that decided it (`ip route get fibmatch`). */
export interface RouteAnswer {
  daddr: string;
  error?: string;
  route?: NativeRoute;
  matched?: NativeRoute;
}

export interface NativeRoutes {
  lookup(queries: RouteQuery[]): Promise<RouteAnswer[]>;
  dump(netns: number, nsPaths: string[]): Promise<NativeRoute[]>;
  /** Grows whenever a watched namespace's routes, links, addresses or rules change. */
  readonly changes: number;
  /** Destinations looked up in the kernel so far; every other answer came from a cache. */
  readonly kernelLookups: number;
  readonly namespaces: number[];
  retain(netns: number[]): void;
  close(): void;
}

export interface ConntrackQuery {
  netns: number;
  /** /proc/PID/ns/net of the namespace's owners or /run/netns names, tried in turn (unused for nettrace's own namespace). */
  nsPaths: string[];
  proto: 'tcp' | 'udp';
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
}

export interface ConntrackTuple {
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
}

/** The conntrack entry of a tuple: found by its original or its reply tuple; `status` holds the IPS_* bits. */
export interface ConntrackAnswer {
  found: boolean;
  error?: string;
  orig?: ConntrackTuple;
  reply?: ConntrackTuple;
  status: number;
}

export interface NativeConntrack {
  lookup(queries: ConntrackQuery[]): Promise<ConntrackAnswer[]>;
  /** Requests sent to the kernel so far. */
  readonly requests: number;
  retain(netns: number[]): void;
  close(): void;
}

export interface NativeAddon {
  NativeTracer: {
    open(options: NativeOptions, onBatch: (args: [Buffer, boolean]) => void): NativeTracer;
  };
  NativeRoutes: new () => NativeRoutes;
  NativeConntrack: new () => NativeConntrack;
  ChurnRun: { open(options: ChurnOptions): ChurnRun };
  bpfProgStats(ids: number[]): ProgStats[];
}

/** The native connection-churn generator (native/src/churn.rs). */
export interface ChurnOptions {
  rate?: number;
  concurrency: number;
  acceptors: number;
  payload: number;
  server: string;
  rst: boolean;
  serverNetns?: string;
  clientNetns?: string;
  durationMs: number;
}

export interface ChurnSample {
  elapsedMs: number;
  conns: number;
  connected: number;
  connectFailed: number;
  errors: number;
  accepted: number;
  intervalConnects: number;
  intervalP50Ns: number;
  intervalP99Ns: number;
  intervalMaxNs: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
  generatorCpuNs: number;
  running: boolean;
}

export interface ChurnRun {
  readonly port: number;
  go(): void;
  sample(): ChurnSample;
  stop(): void;
  finish(): ChurnSample;
}

export interface ProgStats {
  id: number;
  name: string;
  runCnt: number;
  runTimeNs: number;
  recursionMisses: number;
}

let addon: NativeAddon | undefined;

let loader: (() => NativeAddon) | undefined;

/** Loads the addon another way when first needed: the single executable dlopens the copy it carries (scripts/sea-main.js). */
export function useNativeLoader(load: () => NativeAddon): void {
  loader = load;
}

export function native(): NativeAddon {
  if (!addon && loader) addon = loader();
  if (!addon) {
    const where = path.join(__dirname, '..', '..', 'native', 'index.js');
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(where) as NativeAddon;
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
      throw new NettraceError('ENATIVE', `the native addon is not built (run: npm run build): ${why}`);
    }
  }
  return addon;
}
