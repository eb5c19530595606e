/**
 * Receive steering's types: what the kernel counts (raw), the rollups, the
 * configuration and the event; and, named here with them, what a flow carries
 * (flows/flow-steering.ts: the flow table's own type, so that flows/ imports
 * nothing of steering/). CPUs are numbered as the kernel numbers them; maps
 * from CPU to a count are objects keyed by the CPU number.
 */
import type { CpuCounts, FlowSteering, MatrixCell } from '../flows/flow-steering';
import type { NativeSteering } from '../native';

export type { CpuCounts, FlowSteering, MatrixCell };

/** As the addon reads the BPF maps (bpf/steering.bpf.c): its generated type, under the name steering's users know. */
export type RawSteering = NativeSteering;

/** Locality and the CPU matrix of a set of flows: a process, an interface, or everything. */
export interface SteeringGroup {
  key: string;
  flows: number;
  segs: number;
  known_segs: number;
  local_segs: number;
  locality: number | null;
  /** matrix[processed][read]: segments, cpus × cpus. */
  matrix: number[][];
}

export interface QueueConfig {
  queue: string;
  /** rps_cpus as the kernel prints it (hex mask) and as CPU numbers. */
  rps_mask: string;
  rps_cpus: number[];
  rps_flow_cnt: number;
  rps: boolean;
  rfs: boolean;
}

export interface InterfaceConfig {
  netns: number;
  name: string;
  ifindex: number;
  queues: QueueConfig[];
}

export interface SteeringConfig {
  /** net.core.rps_sock_flow_entries (global): 0 means RFS is off everywhere. */
  rps_sock_flow_entries: number;
  interfaces: InterfaceConfig[];
  /** Namespaces whose configuration could not be read, and why. */
  unreadable: { netns: number; reason: string }[];
}

/** Which socket, and its owner; null where the flow table never saw it open. */
export interface SteeringSocket {
  sock: number;
  netns: number | null;
  family: 4 | 6 | null;
  saddr: string | null;
  sport: number | null;
  daddr: string | null;
  dport: number | null;
  pid: number | null;
  comm: string | null;
}

/** A flow whose locality stayed below the threshold for the hold time. */
export interface SteeringEvent extends SteeringSocket {
  type: 'steering';
  ts: number;
  processed_on: CpuCounts;
  read_on: CpuCounts;
  /** Over the time it stayed below. */
  locality: number;
  threshold: number;
  below_ms: number;
}

export interface SteeringOptions {
  /** A flow whose locality stays below this is reported (default 0.5). */
  threshold?: number;
  /** For this long, ms (default 5000). */
  holdMs?: number;
  /** Segments an interval needs before its locality counts (default 100). */
  minSegs?: number;
}

/** A socket's steering, with which socket it is. */
export interface SteeringFlow extends FlowSteering, SteeringSocket {
  /** Over the last interval. */
  interval: { segs: number; reads: number; locality: number | null };
}

export interface SteeringReport {
  type: 'report';
  ts: number;
  cpus: number;
  overall: SteeringGroup;
  processes: SteeringGroup[];
  interfaces: SteeringGroup[];
  flows: SteeringFlow[];
  config: SteeringConfig;
  /** Map entries the kernel's LRU pushed out, and packets that entered without a flow hash. */
  evictions: number;
  unhashed: number;
}

/** The steering counters as of a FlowMonitor refresh (see SteeringEnricher), per socket cookie. */
export interface SteeringSample {
  cpus: number;
  bySock: Map<number, FlowSteering>;
  evictions: number;
  unhashed: number;
}
