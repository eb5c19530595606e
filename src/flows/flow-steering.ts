/**
 * A socket's receive steering as a flow carries it (Flow.steering): the
 * flow table's type, filled in by steering/'s enricher. CPUs are numbered as
 * the kernel numbers them; maps from CPU to a count are objects keyed by the
 * CPU number.
 */

export type CpuCounts = Record<number, number>;

/** One cell of a CPU × CPU matrix: segments processed on `processed` while the reader last ran on `read`. */
export type MatrixCell = [processed: number, read: number, segs: number];

/** A socket's steering since tracing began (field `steering` of a Flow). */
export interface FlowSteering {
  /** Segments received (a GSO/GRO packet counts its segments). */
  segs: number;
  /** Segments per CPU the stack processed them on (after RPS/RFS). */
  processed_on: CpuCounts;
  /** Segments per CPU they entered the stack on (NIC/NAPI or, for veth, the sender), before RPS; null when the same as processed_on. */
  entered_on: CpuCounts | null;
  /** Reads that returned data, per CPU the reader ran on. */
  read_on: CpuCounts;
  reads: number;
  read_bytes: number;
  /** The CPU and process of the last read; null before any. */
  reader_cpu: number | null;
  reader_pid: number | null;
  /** Segments processed while a reader CPU was known, and of those the ones on that CPU. */
  known_segs: number;
  local_segs: number;
  /** local_segs / known_segs; null before the first read. */
  locality: number | null;
  /** Sparse processed-on × read-on matrix. */
  cells: MatrixCell[];
  /** Interface the segments arrived on (index in the socket's namespace) and its name when known. */
  ifindex: number | null;
  interface: string | null;
}
