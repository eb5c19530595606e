/**
 * One flow per socket, kept from two sources: the event stream (every open,
 * transition and close, as they happen) and periodic kernel snapshots (live
 * byte counters, queues, RTT, and sockets that predate tracing). Closed flows
 * stay for a grace period; the table never holds more than `cap` flows, the
 * least recently touched leaving first, and every eviction is counted.
 */
import { RecordCursor } from '../decode';
import { Clock } from '../events';
import { Kind } from '../layout';
import { stateName, TcpState } from '../tcp';
import { SocketIdent, SocketOwner, SocketRow } from './snapshot';
import { FlowSteering } from '../steering/types';

export interface Flow extends SocketIdent, SocketOwner {
  state: TcpState;
  /** Data bytes sent (acknowledged) and received so far. */
  tx_bytes: number;
  rx_bytes: number;
  /** Bytes per second over the last interval. */
  tx_rate: number;
  rx_rate: number;
  srtt_us: number | null;
  retrans: number;
  /** Recv-Q and Send-Q as ss shows them; for a listener, pending accepts and the backlog. */
  rx_queue: number;
  tx_queue: number;
  /** Wall-clock ms: when nettrace saw the socket open (null if it predates tracing), first saw it, saw it close. */
  opened: number | null;
  first_seen: number;
  closed: number | null;
  /** The route it takes, as `ip route get DADDR` in its namespace says (null until known, or with no route). */
  ifname: string | null;
  gateway: string | null;
  route_src: string | null;
  route_table: string | null;
  /** Receive steering since tracing began; null unless the tracer runs the steering hooks. */
  steering: FlowSteering | null;
}

/** A flow nothing is known of yet but which socket it is, first seen at `now`. */
export function newFlow(ident: SocketIdent, now: number): Flow {
  // every field written out, in one order, so all flows share one shape
  return {
    sock: ident.sock,
    netns: ident.netns,
    family: ident.family,
    saddr: ident.saddr,
    sport: ident.sport,
    daddr: ident.daddr,
    dport: ident.dport,
    state: 'UNKNOWN',
    pid: null,
    comm: null,
    cgroup: null,
    tx_bytes: 0,
    rx_bytes: 0,
    tx_rate: 0,
    rx_rate: 0,
    srtt_us: null,
    retrans: 0,
    rx_queue: 0,
    tx_queue: 0,
    opened: null,
    first_seen: now,
    closed: null,
    ifname: null,
    gateway: null,
    route_src: null,
    route_table: null,
    steering: null,
  };
}

export interface FlowTableOptions {
  /** Most flows held at once (default 65536). */
  cap?: number;
  /** How long a closed flow stays visible, ms (default 5000). */
  graceMs?: number;
}

interface Entry {
  flow: Flow;
  sampledTx: number;
  sampledRx: number;
  /** Snapshots in a row that did not list this open socket. */
  missing: number;
  /** The table's use counter when this entry took its place at the back of the map's order. */
  placed: number;
}

const CLOSE = 7;
const TIME_WAIT = 6;

export class FlowTable {
  private readonly entries = new Map<number, Entry>();
  private readonly cap: number;
  private readonly graceMs: number;
  private lastTick: number | undefined;
  private uses = 0;
  private oldest: MapIterator<number> | undefined;
  /** Flows dropped to stay within the cap. */
  evictions = 0;

  constructor(options: FlowTableOptions = {}) {
    this.cap = options.cap ?? 65536;
    this.graceMs = options.graceMs ?? 5000;
  }

  get size(): number {
    return this.entries.size;
  }

  flows(): Flow[] {
    return [...this.entries.values()].map((e) => e.flow);
  }

  get(sock: number): Flow | undefined {
    return this.entries.get(sock)?.flow;
  }

  /** Folds one record of the event stream in. Allocates only for a socket it has not seen. */
  applyRecord(c: RecordCursor, clock: Clock): void {
    const ts = clock.wallMs(c.tsNs);
    const sock = c.cookie;
    let e = this.entries.get(sock);
    if (e === undefined) {
      e = this.insert(sock, ts, { sock, netns: c.netns, family: c.family, saddr: c.saddr, sport: c.sport, daddr: c.daddr, dport: c.dport });
    } else {
      this.use(sock, e);
    }
    const f = e.flow;
    if (c.sport !== 0 && f.sport !== c.sport) {
      f.sport = c.sport; // connect() picks the local port after SYN_SENT
      f.saddr = c.saddr;
    }
    if (c.hasOwner) {
      const pid = c.pid;
      // a new string only when the owner changes, not for every record
      if (f.pid !== pid || f.comm === null) f.comm = c.comm;
      f.pid = pid;
      f.cgroup = c.cgroup;
    }
    switch (c.kind) {
      case Kind.State:
        f.state = stateName(c.newState);
        if (c.oldState === CLOSE || (c.newState !== CLOSE && f.opened === null && c.inOldNs === 0)) f.opened ??= ts;
        if (c.newState === CLOSE) f.closed ??= ts;
        else if (c.oldState === CLOSE) f.closed = null;
        break;
      case Kind.Close:
        f.tx_bytes = Math.max(f.tx_bytes, c.txBytes);
        f.rx_bytes = Math.max(f.rx_bytes, c.rxBytes);
        f.srtt_us = c.srttUs;
        f.retrans = c.retrans;
        f.rx_queue = 0;
        f.tx_queue = 0;
        f.closed ??= ts;
        break;
    }
  }

  /** Folds a kernel snapshot in, taken at `now` (wall ms), in the network namespace `netns`. */
  applySnapshot(rows: SocketRow[], now: number, netns: number): void {
    const seen = new Set<number>();
    for (const r of rows) {
      seen.add(r.sock);
      const e = this.touch(r.sock, now, () => ({
        sock: r.sock,
        netns: r.netns,
        family: r.family,
        saddr: r.saddr,
        sport: r.sport,
        daddr: r.daddr,
        dport: r.dport,
      }));
      const f = e.flow;
      e.missing = 0;
      // a socket the stream saw close lingers as its TIME_WAIT twin (same cookie)
      if (f.closed === null || r.state === TIME_WAIT) f.state = stateName(r.state);
      if (r.sport !== 0) f.sport = r.sport;
      if (r.pid !== null) {
        f.pid = r.pid;
        f.comm = r.comm;
        f.cgroup = r.cgroup;
      }
      f.tx_bytes = Math.max(f.tx_bytes, r.tx_bytes);
      f.rx_bytes = Math.max(f.rx_bytes, r.rx_bytes);
      if (r.state !== TIME_WAIT && r.state !== 12) {
        f.srtt_us = r.srtt_us;
        f.retrans = r.retrans;
        f.rx_queue = r.rx_queue;
        f.tx_queue = r.tx_queue;
      }
    }
    // An open socket of this namespace that two snapshots in a row no longer list is gone,
    // even if its close record was lost.
    for (const e of this.entries.values()) {
      const f = e.flow;
      if (f.closed !== null || f.netns !== netns || seen.has(f.sock)) continue;
      if (++e.missing >= 2) {
        f.closed = now;
        f.state = 'CLOSE';
      }
    }
  }

  /** Sets owners found outside the stream (see ProcOwners). */
  setOwner(sock: number, pid: number, comm: string): void {
    const f = this.entries.get(sock)?.flow;
    if (f && f.pid === null) {
      f.pid = pid;
      f.comm = comm;
    }
  }

  /** Sets a socket's steering figures (see steering/fold); sockets the table does not hold are left out. */
  setSteering(sock: number, s: FlowSteering): void {
    const f = this.entries.get(sock)?.flow;
    if (f) f.steering = s;
  }

  /** Ends an interval at `now`: rates over it, and closed flows past their grace leave. */
  tick(now: number): void {
    const dt = this.lastTick === undefined ? 0 : (now - this.lastTick) / 1000;
    this.lastTick = now;
    for (const [sock, e] of this.entries) {
      const f = e.flow;
      // most flows of a churn never move a byte between ticks: leave them untouched
      if (f.tx_bytes !== e.sampledTx || f.tx_rate !== 0) {
        f.tx_rate = dt > 0 ? Math.max(0, f.tx_bytes - e.sampledTx) / dt : 0;
        e.sampledTx = f.tx_bytes;
      }
      if (f.rx_bytes !== e.sampledRx || f.rx_rate !== 0) {
        f.rx_rate = dt > 0 ? Math.max(0, f.rx_bytes - e.sampledRx) / dt : 0;
        e.sampledRx = f.rx_bytes;
      }
      if (f.closed !== null && now - f.closed > this.graceMs) this.entries.delete(sock);
    }
  }

  /** The entry for `sock`, created if new, marked as the most recently used. */
  private touch(sock: number, now: number, ident: () => SocketIdent): Entry {
    const e = this.entries.get(sock);
    if (e === undefined) return this.insert(sock, now, ident());
    this.use(sock, e);
    return e;
  }

  /**
   * Keeps the map's order (eviction order) close to recency without two hash
   * operations per record: an entry moves to the back only once it has fallen
   * half the table's size of uses behind, so a busy socket moves seldom and an
   * idle one never.
   */
  private use(sock: number, e: Entry): void {
    if (++this.uses - e.placed > this.cap >> 1) {
      this.entries.delete(sock);
      this.entries.set(sock, e);
      e.placed = this.uses;
    }
  }

  private insert(sock: number, now: number, ident: SocketIdent): Entry {
    const e: Entry = { flow: newFlow(ident, now), sampledTx: 0, sampledRx: 0, missing: 0, placed: ++this.uses };
    this.entries.set(sock, e);
    while (this.entries.size > this.cap) {
      this.entries.delete(this.front());
      this.evictions++;
    }
    return e;
  }

  /** The first key in the map's order. One iterator is kept across calls: a fresh one would step over every deleted slot at the front again. */
  private front(): number {
    let next = this.oldest?.next();
    if (!next || next.done) {
      this.oldest = this.entries.keys();
      next = this.oldest.next();
    }
    return next.value as number;
  }
}
