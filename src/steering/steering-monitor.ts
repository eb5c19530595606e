/**
 * Receive steering per flow, per process, per interface and overall, sampled
 * from a FlowMonitor over a tracer that runs the steering hooks (whose
 * SteeringEnricher sets the figures at each refresh); and the `steering` event
 * for flows whose locality stays low.
 */
import { FlowMonitor } from '../flows/flow-monitor';
import { Flow } from '../flows/flow';
import { readSteeringConfig } from './config';
import { SteeringEnricher } from './steering-enricher';
import { delta, group, ratio } from './fold';
import { FlowSteering, SteeringEvent, SteeringFlow, SteeringGroup, SteeringOptions, SteeringReport } from './types';

interface Watch {
  before: FlowSteering;
  /** Since when the locality has stayed below, and what it added up to meanwhile. */
  belowSince: number | null;
  local: number;
  known: number;
  reported: boolean;
}

function steeringFlow(sock: number, s: FlowSteering, f: Flow | undefined, d: FlowSteering): SteeringFlow {
  return {
    sock,
    netns: f?.netns ?? null,
    family: f?.family ?? null,
    saddr: f?.saddr ?? null,
    sport: f?.sport ?? null,
    daddr: f?.daddr ?? null,
    dport: f?.dport ?? null,
    pid: f?.pid ?? s.reader_pid,
    comm: f?.comm ?? null,
    ...s,
    interval: { segs: d.segs, reads: d.reads, locality: d.locality },
  };
}

function groupsBy(flows: SteeringFlow[], key: (f: SteeringFlow) => string, cpus: number): SteeringGroup[] {
  const sets = new Map<string, SteeringFlow[]>();
  for (const f of flows) {
    const k = key(f);
    if (!sets.has(k)) sets.set(k, []);
    sets.get(k)!.push(f);
  }
  return [...sets].map(([k, fs]) => group(k, fs, cpus)).sort((a, b) => b.segs - a.segs);
}

export class SteeringMonitor {
  private readonly watches = new Map<number, Watch>();
  private readonly threshold: number;
  private readonly holdMs: number;
  private readonly minSegs: number;
  private lastTs: number | undefined;
  /** The monitor's steering enricher; none when its tracer does not run the steering hooks. */
  private readonly enricher: SteeringEnricher | undefined;

  constructor(
    readonly flows: FlowMonitor,
    options: SteeringOptions = {},
  ) {
    this.enricher = flows.enrichers.find((e): e is SteeringEnricher => e instanceof SteeringEnricher);
    this.threshold = options.threshold ?? 0.5;
    this.holdMs = options.holdMs ?? 5000;
    this.minSegs = options.minSegs ?? 100;
  }

  /**
   * Refreshes the flows, then reports on the sockets `select` keeps (all by
   * default) and returns the events of flows that stayed below the threshold.
   * Sockets closed since are forgotten in the kernel once reported.
   */
  sample(now = Date.now(), select: (f: Flow | undefined) => boolean = () => true): { report: SteeringReport; events: SteeringEvent[] } {
    const table = this.flows.table;
    this.flows.refresh(now);
    const sample = this.enricher?.sample;
    if (!sample) throw new Error('the tracer does not run the steering hooks (start it with steering: true)');
    const intervalStart = this.lastTs ?? now;
    this.lastTs = now;
    const chosen: SteeringFlow[] = [];
    const events: SteeringEvent[] = [];
    for (const [sock, s] of sample.bySock) {
      const f = table.get(sock);
      const w = this.watches.get(sock);
      const d = delta(s, w?.before);
      if (!w) this.watches.set(sock, { before: s, belowSince: null, local: 0, known: 0, reported: false });
      else w.before = s;
      if (!select(f)) continue;
      const flow = steeringFlow(sock, s, f, d);
      chosen.push(flow);
      const e = this.watch(this.watches.get(sock)!, d, intervalStart, now, flow);
      if (e) events.push(e);
    }
    const config = readSteeringConfig([this.flows.netns, ...chosen.map((f) => f.netns ?? this.flows.netns)]);
    const names = new Map(config.interfaces.map((i) => [`${i.netns}:${i.ifindex}`, i.name]));
    for (const f of chosen) {
      f.interface = names.get(`${f.netns ?? this.flows.netns}:${f.ifindex}`) ?? null;
      sample.bySock.get(f.sock)!.interface = f.interface; // the flow table's copy too
    }
    const ownNs = this.flows.netns;
    const report: SteeringReport = {
      type: 'report',
      ts: now,
      cpus: sample.cpus,
      overall: group('all', chosen, sample.cpus),
      processes: groupsBy(chosen, (f) => (f.pid === null ? '-' : `${f.pid}/${f.comm ?? ''}`), sample.cpus),
      interfaces: groupsBy(
        chosen,
        (f) => `${f.interface ?? (f.ifindex === null ? '-' : `if${f.ifindex}`)}${f.netns !== null && f.netns !== ownNs ? `@netns:${f.netns}` : ''}`,
        sample.cpus,
      ),
      flows: chosen.sort((a, b) => b.segs - a.segs),
      config,
      evictions: sample.evictions,
      unhashed: sample.unhashed,
    };
    this.forgetClosed(sample.bySock.keys());
    for (const sock of this.watches.keys()) if (!sample.bySock.has(sock)) this.watches.delete(sock); // evicted meanwhile
    return { report, events };
  }

  private watch(w: Watch, d: FlowSteering, start: number, now: number, f: SteeringFlow): SteeringEvent | undefined {
    if (d.known_segs < this.minSegs) return undefined; // idle: neither below nor recovered
    if (d.locality! >= this.threshold) {
      Object.assign(w, { belowSince: null, local: 0, known: 0, reported: false });
      return undefined;
    }
    w.belowSince ??= start;
    w.local += d.local_segs;
    w.known += d.known_segs;
    if (w.reported || now - w.belowSince < this.holdMs) return undefined;
    w.reported = true;
    return {
      type: 'steering',
      ts: now,
      sock: f.sock,
      netns: f.netns,
      family: f.family,
      saddr: f.saddr,
      sport: f.sport,
      daddr: f.daddr,
      dport: f.dport,
      pid: f.pid,
      comm: f.comm,
      processed_on: d.processed_on,
      read_on: d.read_on,
      locality: ratio(w.local, w.known)!,
      threshold: this.threshold,
      below_ms: now - w.belowSince,
    };
  }

  /** Closed sockets are reported one last time, then the kernel and this monitor let them go. */
  private forgetClosed(socks: Iterable<number>): void {
    const gone = [...socks].filter((sock) => {
      const f = this.flows.table.get(sock);
      return f !== undefined && f.closed !== null;
    });
    for (const sock of gone) this.watches.delete(sock);
    this.enricher?.source.steeringForget(gone);
  }
}
