/** Folds what the kernel counts into one FlowSteering per socket, and sets of flows into groups. */
import { CpuCounts, FlowSteering, MatrixCell, RawSteering, SteeringGroup } from './types';

function blank(): FlowSteering {
  return {
    segs: 0,
    processed_on: {},
    entered_on: null,
    read_on: {},
    reads: 0,
    read_bytes: 0,
    reader_cpu: null,
    reader_pid: null,
    known_segs: 0,
    local_segs: 0,
    locality: null,
    cells: [],
    ifindex: null,
    interface: null,
  };
}

function add(counts: CpuCounts, cpu: number, n: number): void {
  if (n > 0) counts[cpu] = (counts[cpu] ?? 0) + n;
}

function sameCpus(a: CpuCounts, b: CpuCounts): boolean {
  const ka = Object.keys(a).sort().join();
  return ka === Object.keys(b).sort().join();
}

export function ratio(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

/** Per socket cookie. Entered-on counts are kept only where they differ from where the stack processed. */
export function foldSteering(raw: RawSteering): Map<number, FlowSteering> {
  const out = new Map<number, FlowSteering>();
  const of = (cookie: number): FlowSteering => {
    let s = out.get(cookie);
    if (!s) out.set(cookie, (s = blank()));
    return s;
  };
  const hashes = new Map<number, Set<number>>();
  const bySegs = new Map<number, number>();
  for (const c of raw.cells) {
    const s = of(c.cookie);
    s.segs += c.segs;
    add(s.processed_on, c.cpu, c.segs);
    if (c.readerCpu >= 0) {
      s.known_segs += c.segs;
      if (c.readerCpu === c.cpu) s.local_segs += c.segs;
      s.cells.push([c.cpu, c.readerCpu, c.segs]);
    }
    // the interface that brought most of its segments
    if (c.segs > (bySegs.get(c.cookie) ?? -1)) {
      bySegs.set(c.cookie, c.segs);
      s.ifindex = c.ifindex;
    }
    if (c.hash !== 0) {
      if (!hashes.has(c.cookie)) hashes.set(c.cookie, new Set());
      hashes.get(c.cookie)!.add(c.hash);
    }
  }
  for (const r of raw.readers) {
    const s = of(r.cookie);
    if (r.cpu >= 0) {
      s.reader_cpu = r.cpu;
      s.reader_pid = r.pid;
    }
    r.reads.forEach((n, cpu) => add(s.read_on, cpu, n));
    s.reads += r.reads.reduce((a, b) => a + b, 0);
    s.read_bytes += r.bytes;
  }
  const entered = new Map(raw.entries.map((e) => [e.hash, e.segs]));
  for (const [cookie, set] of hashes) {
    const s = out.get(cookie)!;
    const counts: CpuCounts = {};
    for (const h of set) entered.get(h)?.forEach((n, cpu) => add(counts, cpu, n));
    if (Object.keys(counts).length > 0 && !sameCpus(counts, s.processed_on)) s.entered_on = counts;
  }
  for (const s of out.values()) s.locality = ratio(s.local_segs, s.known_segs);
  return out;
}

/** Locality and the processed-on × read-on matrix of these flows. */
export function group(key: string, flows: FlowSteering[], cpus: number): SteeringGroup {
  const matrix = Array.from({ length: cpus }, () => new Array<number>(cpus).fill(0));
  const g: SteeringGroup = { key, flows: flows.length, segs: 0, known_segs: 0, local_segs: 0, locality: null, matrix };
  for (const s of flows) {
    g.segs += s.segs;
    g.known_segs += s.known_segs;
    g.local_segs += s.local_segs;
    for (const [p, r, n] of s.cells) if (p < cpus && r < cpus) matrix[p][r] += n;
  }
  g.locality = ratio(g.local_segs, g.known_segs);
  return g;
}

/** What happened between two cumulative readings of one socket. */
export function delta(now: FlowSteering, before: FlowSteering | undefined): FlowSteering {
  if (!before) return now;
  const minus = (a: CpuCounts, b: CpuCounts): CpuCounts => {
    const out: CpuCounts = {};
    for (const [cpu, n] of Object.entries(a)) if (n - (b[Number(cpu)] ?? 0) > 0) out[Number(cpu)] = n - (b[Number(cpu)] ?? 0);
    return out;
  };
  const cells: MatrixCell[] = now.cells
    .map(([p, r, n]): MatrixCell => [p, r, n - (before.cells.find((c) => c[0] === p && c[1] === r)?.[2] ?? 0)])
    .filter((c) => c[2] > 0);
  const known = now.known_segs - before.known_segs;
  const local = now.local_segs - before.local_segs;
  return {
    ...now,
    segs: now.segs - before.segs,
    processed_on: minus(now.processed_on, before.processed_on),
    entered_on: now.entered_on && minus(now.entered_on, before.entered_on ?? {}),
    read_on: minus(now.read_on, before.read_on),
    reads: now.reads - before.reads,
    read_bytes: now.read_bytes - before.read_bytes,
    known_segs: known,
    local_segs: local,
    locality: ratio(local, known),
    cells,
  };
}
