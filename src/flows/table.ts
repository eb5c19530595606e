/**
 * One flow per socket, kept from two sources: the event stream (every open,
 * transition and close, as they happen) and periodic kernel snapshots (live
 * byte counters, queues, RTT, and sockets that predate tracing). Closed flows
 * stay for a grace period; the table never holds more than `cap` flows, the
 * least recently touched leaving first, and every eviction is counted.
 */
import { RecordCursor } from '../decode';
import { Clock } from '../events';
import { Kind, UdpEvent } from '../layout';
import { stateName, TcpState } from '../tcp';
import { PeerRow, SocketIdent, SocketOwner, SocketRow, UdpRow } from './snapshot';
import { FlowSteering } from '../steering/types';

export type Proto = 'tcp' | 'udp';

/** A remote endpoint of an unconnected UDP socket, with what went each way. */
export interface Peer extends Omit<PeerRow, 'sock'> {
  tx_rate: number;
  rx_rate: number;
}

/** What the kernel counted for a UDP socket, from a close record or a snapshot. */
interface UdpTotals {
  tx_bytes: number;
  rx_bytes: number;
  tx_datagrams: number;
  rx_datagrams: number;
  drops: number;
  rx_queue: number;
  tx_queue: number;
}

/** Remote endpoints kept per unconnected UDP socket: those with the most bytes. */
export const PEERS_SHOWN = 8;

export interface Flow extends SocketIdent, SocketOwner {
  proto: Proto;
  /** TCP's state; a UDP socket is ESTABLISHED when connected, else CLOSE (ss's UNCONN). */
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
  /** UDP only: datagrams each way and the kernel's drop count for the socket. */
  tx_datagrams?: number;
  rx_datagrams?: number;
  drops?: number;
  /** UDP, unconnected only: the remote endpoints with the most bytes, most first (at most PEERS_SHOWN). */
  peers?: Peer[];
}

/** A flow nothing is known of yet but which socket it is, first seen at `now`. */
export function newFlow(ident: SocketIdent, now: number, proto: Proto = 'tcp'): Flow {
  // every field written out, in one order, so all flows of a protocol share one shape
  const f: Flow = {
    sock: ident.sock,
    netns: ident.netns,
    family: ident.family,
    saddr: ident.saddr,
    sport: ident.sport,
    daddr: ident.daddr,
    dport: ident.dport,
    proto,
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
  if (proto === 'udp') Object.assign(f, { tx_datagrams: 0, rx_datagrams: 0, drops: 0 });
  return f;
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
  /** Bytes each UDP peer ("addr|port") had at the last tick, for its rates. */
  sampledPeers?: Map<string, [number, number]>;
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
      e = this.insert(sock, ts, c.proto, { sock, netns: c.netns, family: c.family, saddr: c.saddr, sport: c.sport, daddr: c.daddr, dport: c.dport });
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
      case Kind.Udp:
        this.applyUdp(c, f, ts);
        break;
    }
  }

  private applyUdp(c: RecordCursor, f: Flow, ts: number): void {
    if (c.udpEvent === UdpEvent.Open) {
      f.opened ??= ts;
      if (f.state === 'UNKNOWN') f.state = 'CLOSE';
      return;
    }
    // the release sees the socket's last addresses; v4-mapped use makes an IPv6 socket IPv4
    f.family = c.family;
    f.saddr = c.saddr;
    f.daddr = c.daddr;
    f.dport = c.dport;
    const { txBytes, rxBytes, txDatagrams, rxDatagrams, drops } = c;
    foldUdp(f, { tx_bytes: txBytes, rx_bytes: rxBytes, tx_datagrams: txDatagrams, rx_datagrams: rxDatagrams, drops, rx_queue: 0, tx_queue: 0 });
    f.state = 'CLOSE';
    f.closed ??= ts;
  }

  /** Folds a kernel snapshot in, taken at `now` (wall ms), in the network namespace `netns`. */
  applySnapshot(rows: SocketRow[], now: number, netns: number): void {
    const seen = new Set<number>();
    for (const r of rows) {
      seen.add(r.sock);
      const e = this.touch(r.sock, now, 'tcp', () => ({
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
      adoptOwner(f, r);
      f.tx_bytes = Math.max(f.tx_bytes, r.tx_bytes);
      f.rx_bytes = Math.max(f.rx_bytes, r.rx_bytes);
      if (r.state !== TIME_WAIT && r.state !== 12) {
        f.srtt_us = r.srtt_us;
        f.retrans = r.retrans;
        f.rx_queue = r.rx_queue;
        f.tx_queue = r.tx_queue;
      }
    }
    this.expireUnlisted('tcp', seen, now, netns);
  }

  /**
   * Folds the iter/udp snapshot and the per-endpoint counters in, taken at
   * `now` in `netns`. Counters only grow: the snapshot and the close record
   * read the same kernel-side totals at different times.
   */
  applyUdpSnapshot(rows: UdpRow[], peers: PeerRow[], now: number, netns: number): void {
    const seen = new Set<number>();
    for (const r of rows) {
      seen.add(r.sock);
      const e = this.touch(r.sock, now, 'udp', () => r);
      const f = e.flow;
      e.missing = 0;
      if (f.closed === null) f.state = stateName(r.state);
      Object.assign(f, { family: r.family, saddr: r.saddr, sport: r.sport, daddr: r.daddr, dport: r.dport });
      adoptOwner(f, r);
      foldUdp(f, r);
    }
    this.applyPeers(peers);
    this.expireUnlisted('udp', seen, now, netns);
  }

  private applyPeers(peers: PeerRow[]): void {
    const bySock = new Map<number, PeerRow[]>();
    for (const p of peers) {
      const list = bySock.get(p.sock);
      if (list) list.push(p);
      else bySock.set(p.sock, [p]);
    }
    for (const [sock, list] of bySock) {
      const f = this.entries.get(sock)?.flow;
      if (!f || f.proto !== 'udp') continue;
      const old = new Map((f.peers ?? []).map((p) => [`${p.daddr}|${p.dport}`, p]));
      f.peers = list
        .sort((a, b) => b.tx_bytes + b.rx_bytes - (a.tx_bytes + a.rx_bytes))
        .slice(0, PEERS_SHOWN)
        .map((p) => {
          const was = old.get(`${p.daddr}|${p.dport}`);
          const { sock: _, ...rest } = p;
          return { ...rest, tx_rate: was?.tx_rate ?? 0, rx_rate: was?.rx_rate ?? 0 };
        });
    }
  }

  /** An open socket of this namespace that two snapshots in a row no longer list is gone, even if its close record was lost. */
  private expireUnlisted(proto: Proto, seen: Set<number>, now: number, netns: number): void {
    for (const e of this.entries.values()) {
      const f = e.flow;
      if (f.proto !== proto || f.closed !== null || f.netns !== netns || seen.has(f.sock)) continue;
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
      if (f.peers) e.sampledPeers = peerRates(f.peers, e.sampledPeers, dt);
      if (f.closed !== null && now - f.closed > this.graceMs) this.entries.delete(sock);
    }
  }

  /** The entry for `sock`, created if new, marked as the most recently used. */
  private touch(sock: number, now: number, proto: Proto, ident: () => SocketIdent): Entry {
    const e = this.entries.get(sock);
    if (e === undefined) return this.insert(sock, now, proto, pickIdent(ident()));
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

  private insert(sock: number, now: number, proto: Proto, ident: SocketIdent): Entry {
    const e: Entry = { flow: newFlow(ident, now, proto), sampledTx: 0, sampledRx: 0, missing: 0, placed: ++this.uses };
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

/** The owner the kernel side knew, if it knew one. */
function adoptOwner(f: Flow, r: SocketOwner): void {
  if (r.pid === null) return;
  f.pid = r.pid;
  f.comm = r.comm;
  f.cgroup = r.cgroup;
}

/** Counters only grow: a snapshot and a close record read the same kernel-side totals at different times. */
function foldUdp(f: Flow, t: UdpTotals): void {
  f.tx_bytes = Math.max(f.tx_bytes, t.tx_bytes);
  f.rx_bytes = Math.max(f.rx_bytes, t.rx_bytes);
  f.tx_datagrams = Math.max(f.tx_datagrams ?? 0, t.tx_datagrams);
  f.rx_datagrams = Math.max(f.rx_datagrams ?? 0, t.rx_datagrams);
  f.drops = t.drops;
  f.rx_queue = t.rx_queue;
  f.tx_queue = t.tx_queue;
}

function pickIdent(r: SocketIdent): SocketIdent {
  return { sock: r.sock, netns: r.netns, family: r.family, saddr: r.saddr, sport: r.sport, daddr: r.daddr, dport: r.dport };
}

/** Sets each peer's rates from the bytes it had at the last tick; returns this tick's samples. */
function peerRates(peers: Peer[], sampled: Map<string, [number, number]> | undefined, dt: number): Map<string, [number, number]> {
  const next = new Map<string, [number, number]>();
  for (const p of peers) {
    const key = `${p.daddr}|${p.dport}`;
    const was = sampled?.get(key);
    p.tx_rate = dt > 0 && was ? Math.max(0, p.tx_bytes - was[0]) / dt : 0;
    p.rx_rate = dt > 0 && was ? Math.max(0, p.rx_bytes - was[1]) / dt : 0;
    next.set(key, [p.tx_bytes, p.rx_bytes]);
  }
  return next;
}
