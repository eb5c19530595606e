/**
 * The flow table's storage: every flow's fields in per-slot columns, the
 * slots' lifecycle (admission, recency, eviction, the grace of closed flows)
 * and the Flow objects read from them. What folds records and snapshots in is
 * FlowTable (flow-table.ts), on top of this.
 */
import { stateName } from '../tcp';
import { SocketIdent, SocketOwner } from './snapshot';
import { Slots } from './slots';
import { Nat } from './nat';
import { CgroupResolver } from './cgroups';
import { RouteInfo } from './routes';
import { Flow, newFlow, Peer, Proto } from './flow';

export interface FlowTableOptions {
  /** Most flows held at once (default 65536). */
  cap?: number;
  /** How long a closed flow stays visible, ms (default 5000). */
  graceMs?: number;
}

/** The PROTO column of a TCP and of a UDP slot. */
const TCP = 0;
const UDP = 1;

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

/** A slot's PROTO column, as the protocol's name. */
const PROTOS: readonly Proto[] = ['tcp', 'udp'];

/*
 * A slot's fields, as offsets into its run of W numbers. A slot's numbers sit
 * together (four cache lines, what one record touches first), not in one array
 * per field: a new socket takes the slot of an evicted one, long out of cache,
 * and writing thirty arrays cost thirty cache misses.
 */
const W = 32;
// what every record reads or writes
const PLACED = 0; // the table's use counter when the slot took its place at the back of the order
const SPORT = 1;
const STATE = 2;
const OWNED = 3;
const PID = 4;
const OPENED = 5;
const CLOSED = 6;
const PROTO = 7;
// the socket, its owner and counters
const NETNS = 8;
const FAMILY = 9;
const DPORT = 10;
const CGROUP = 11;
const FIRST_SEEN = 12;
const MISSING = 13; // snapshots in a row that did not list this open socket
const TX_BYTES = 14;
const RX_BYTES = 15;
const TX_RATE = 16;
const RX_RATE = 17;
const SAMPLED_TX = 18;
const SAMPLED_RX = 19;
const SRTT_US = 20;
const RETRANS = 21;
const RX_QUEUE = 22;
const TX_QUEUE = 23;
const TX_DATAGRAMS = 24;
const RX_DATAGRAMS = 25;
const DROPS = 26;
const ROUTE_READ = 27; // the kernel's route change count when the slot's route was read; NaN before
const NAT_ASKED = 28; // conntrack look-ups of the slot so far; past the resolver's tries once settled
// and its strings
const T = 3;
const SADDR = 0;
const DADDR = 1;
const COMM = 2;

/** Times and counters that can be unknown keep NaN for null. */
const orNull = (x: number): number | null => (Number.isNaN(x) ? null : x);

/** The offsets above for FlowTable, which binds them to constants of its own module (a property load per use cost the record path). */
export const COLUMNS = { TCP, UDP, W, PLACED, SPORT, STATE, OWNED, PID, OPENED, CLOSED, PROTO, NETNS, FAMILY, DPORT, CGROUP, FIRST_SEEN, MISSING, TX_BYTES, RX_BYTES, TX_RATE, RX_RATE, SAMPLED_TX, SAMPLED_RX, SRTT_US, RETRANS, RX_QUEUE, TX_QUEUE, TX_DATAGRAMS, RX_DATAGRAMS, DROPS, ROUTE_READ, NAT_ASKED, T, SADDR, DADDR, COMM } as const;
export { PROTOS };

/**
 * Every flow's fields live in per-slot columns (see Slots), so that folding a
 * record in touches a few numbers and makes no object. A Flow object is made
 * for a slot only when someone reads it (flows(), get()) or hangs something on
 * it (a route, steering figures, UDP peers), and is brought up to date from
 * the columns on every read; what hangs on it stays. A slot's object is let go
 * when the slot is: a holder keeps a copy that no longer changes.
 */
export class FlowColumns {
  protected readonly slots: Slots;
  protected readonly cap: number;
  protected readonly graceMs: number;
  protected lastTick: number | undefined;
  protected uses = 0;
  /** Flows dropped to stay within the cap. */
  evictions = 0;

  /** Every slot's numbers, W to a slot (see the field offsets above). */
  protected readonly f: Float64Array;
  /** Every slot's strings, T to a slot. */
  protected readonly text: (string | null)[];
  protected readonly objects: (Flow | undefined)[];
  /** Each slot's route, shared by the slots to one destination. */
  protected readonly routes: (RouteInfo | undefined)[];
  /** Each slot's translation, once a conntrack look-up found one (see NatResolver). */
  protected readonly nats: (Nat | undefined)[];
  /** With a resolver, flows read name their owner's container (a cached look-up by cgroup id). */
  containers: CgroupResolver | undefined;
  /** Each slot's DNS name (see nameFlows), kept from the first that named it. */
  protected readonly rnames: (string | undefined)[];
  /** Filled in place for visit(): a flow that nothing keeps needs no object of its own. */
  protected readonly scratch: Flow = newFlow({ sock: 0, netns: 0, family: 4, saddr: '', sport: 0, daddr: '', dport: 0 }, 0);
  /** Bytes each UDP peer ("addr|port") had at the last tick, for its rates. */
  protected readonly sampledPeers: (Map<string, [number, number]> | undefined)[];

  constructor(options: FlowTableOptions = {}) {
    this.cap = options.cap ?? 65536;
    this.graceMs = options.graceMs ?? 5000;
    const n = this.cap;
    this.slots = new Slots(n);
    this.f = new Float64Array(n * W);
    this.text = new Array<string | null>(n * T).fill(null);
    this.objects = new Array<Flow | undefined>(n).fill(undefined);
    this.sampledPeers = new Array<Map<string, [number, number]> | undefined>(n).fill(undefined);
    this.routes = new Array<RouteInfo | undefined>(n).fill(undefined);
    this.nats = new Array<Nat | undefined>(n).fill(undefined);
    this.rnames = new Array<string | undefined>(n).fill(undefined);
  }

  get size(): number {
    return this.slots.size;
  }

  flows(): Flow[] {
    const out: Flow[] = [];
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) out.push(this.read(s));
    return out;
  }

  get(sock: number): Flow | undefined {
    const s = this.slots.find(sock);
    return s < 0 ? undefined : this.read(s);
  }

  /**
   * The slot's flow now: its own object where steering figures or UDP peers
   * are attached to it, else a copy that the table does not keep. Kept
   * objects outlive a young-generation collection and made V8's major
   * collections most of serve's and top's time at churn.
   */
  private read(s: number): Flow {
    if (this.objects[s] !== undefined) return this.flowAt(s);
    return this.fill(newFlow(this.ident(s), this.f[s * W + FIRST_SEEN], PROTOS[this.f[s * W + PROTO]]), s);
  }

  /**
   * Calls `fn` with every flow, most of them one object filled in place: what
   * `fn` keeps of it must be copied. Flows with objects of their own (read
   * before, or with steering or peers attached) are passed as those.
   */
  visit(fn: (f: Flow) => void): void {
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) {
      const own = this.objects[s];
      if (own !== undefined) fn(this.flowAt(s));
      else fn(this.fill(this.scratch, s));
    }
  }

  has(sock: number): boolean {
    return this.slots.find(sock) >= 0;
  }

  /** Whether the table holds the socket with a known owner. */
  owned(sock: number): boolean {
    const s = this.slots.find(sock);
    return s >= 0 && this.f[s * W + OWNED] === 1;
  }

  tick(now: number): void {
    const dt = this.lastTick === undefined ? 0 : (now - this.lastTick) / 1000;
    this.lastTick = now;
    for (let s = this.slots.after(-1); s !== -1; ) {
      const next = this.slots.after(s);
      const r = s * W;
      // most flows of a churn never move a byte between ticks: leave them untouched
      if (this.f[r + TX_BYTES] !== this.f[r + SAMPLED_TX] || this.f[r + TX_RATE] !== 0) {
        this.f[r + TX_RATE] = dt > 0 ? Math.max(0, this.f[r + TX_BYTES] - this.f[r + SAMPLED_TX]) / dt : 0;
        this.f[r + SAMPLED_TX] = this.f[r + TX_BYTES];
      }
      if (this.f[r + RX_BYTES] !== this.f[r + SAMPLED_RX] || this.f[r + RX_RATE] !== 0) {
        this.f[r + RX_RATE] = dt > 0 ? Math.max(0, this.f[r + RX_BYTES] - this.f[r + SAMPLED_RX]) / dt : 0;
        this.f[r + SAMPLED_RX] = this.f[r + RX_BYTES];
      }
      const peers = this.objects[s]?.peers;
      if (peers) this.sampledPeers[s] = peerRates(peers, this.sampledPeers[s], dt);
      if (!Number.isNaN(this.f[r + CLOSED]) && now - this.f[r + CLOSED] > this.graceMs) this.remove(s);
      s = next;
    }
  }

  /** The slot of the socket a snapshot row lists, created if new, marked as the most recently used. */

  protected touch(r: SocketIdent, now: number, proto: number): number {
    const s = this.slots.find(r.sock);
    if (s >= 0) {
      this.use(s);
      return s;
    }
    const t = this.insert(r.sock, now, proto);
    this.setIdent(t, r.netns, r.family, r.saddr, r.sport, r.daddr, r.dport);
    return t;
  }

  /**
   * Keeps the order (eviction order) close to recency without relinking on
   * every record: a slot moves to the back only once it has fallen half the
   * table's size of uses behind, so a busy socket moves seldom and an idle one
   * never.
   */
  protected use(s: number): void {
    if (++this.uses - this.f[s * W + PLACED] > this.cap >> 1) {
      this.slots.moveToBack(s);
      this.f[s * W + PLACED] = this.uses;
    }
  }

  /** A new slot for `sock`, nothing known of it yet; the least recently placed flow leaves to make room. */
  protected insert(sock: number, now: number, proto: number): number {
    if (this.slots.size === this.cap) {
      this.remove(this.slots.after(-1));
      this.evictions++;
    }
    const s = this.slots.add(sock);
    const r = s * W;
    const t = s * T;
    for (let i = r; i < r + W; i++) this.f[i] = 0; // nothing known: zero counts, no owner, state UNKNOWN (a loop: fill() is a runtime call)
    this.text[t + COMM] = null;
    this.f[r + PROTO] = proto;
    this.f[r + FIRST_SEEN] = now;
    this.f[r + CGROUP] = NaN;
    this.f[r + SRTT_US] = NaN;
    this.f[r + OPENED] = NaN;
    this.f[r + CLOSED] = NaN;
    this.f[r + ROUTE_READ] = NaN;
    this.f[r + PLACED] = ++this.uses;
    return s;
  }

  protected remove(s: number): void {
    this.slots.remove(s);
    // most slots never had an object made: a read is cheaper than a write to a line elsewhere
    if (this.objects[s] !== undefined) this.objects[s] = undefined;
    if (this.sampledPeers[s] !== undefined) this.sampledPeers[s] = undefined;
    if (this.routes[s] !== undefined) this.routes[s] = undefined;
    if (this.nats[s] !== undefined) this.nats[s] = undefined;
    if (this.rnames[s] !== undefined) this.rnames[s] = undefined;
  }

  protected setIdent(s: number, netns: number, family: 4 | 6, saddr: string, sport: number, daddr: string, dport: number): void {
    this.f[s * W + NETNS] = netns;
    this.f[s * W + FAMILY] = family;
    this.text[s * T + SADDR] = saddr;
    this.f[s * W + SPORT] = sport;
    this.text[s * T + DADDR] = daddr;
    this.f[s * W + DPORT] = dport;
  }

  /** The owner the kernel side knew, if it knew one. */
  protected adoptOwner(s: number, o: SocketOwner): void {
    if (o.pid === null) return;
    this.f[s * W + OWNED] = 1;
    this.f[s * W + PID] = o.pid;
    this.text[s * T + COMM] = o.comm;
    this.f[s * W + CGROUP] = o.cgroup ?? NaN;
  }

  /** Counters only grow: a snapshot and a close record read the same kernel-side totals at different times. */
  protected foldUdp(s: number, t: UdpTotals): void {
    const r = s * W;
    this.f[r + TX_BYTES] = Math.max(this.f[r + TX_BYTES], t.tx_bytes);
    this.f[r + RX_BYTES] = Math.max(this.f[r + RX_BYTES], t.rx_bytes);
    this.f[r + TX_DATAGRAMS] = Math.max(this.f[r + TX_DATAGRAMS], t.tx_datagrams);
    this.f[r + RX_DATAGRAMS] = Math.max(this.f[r + RX_DATAGRAMS], t.rx_datagrams);
    this.f[r + DROPS] = t.drops;
    this.f[r + RX_QUEUE] = t.rx_queue;
    this.f[r + TX_QUEUE] = t.tx_queue;
  }

  /** The slot's own Flow object, made if it has none (to attach to), with every field as the columns have it now. */

  protected flowAt(s: number): Flow {
    let f = this.objects[s];
    if (f === undefined) {
      f = newFlow(this.ident(s), this.f[s * W + FIRST_SEEN], PROTOS[this.f[s * W + PROTO]]);
      this.objects[s] = f;
    }
    return this.fill(f, s);
  }

  /** Sets every field of `f` as the slot's columns have it now. */
  private fill(f: Flow, s: number): Flow {
    const r = s * W;
    const t = s * T;
    const proto = PROTOS[this.f[r + PROTO]];
    if (f === this.scratch) {
      f.sock = this.slots.cookie(s);
      f.netns = this.f[r + NETNS];
      f.proto = proto;
      f.first_seen = this.f[r + FIRST_SEEN];
    }
    f.nat = this.nats[s] ?? null;
    const route = this.routes[s];
    f.ifname = route?.ifname ?? null;
    f.gateway = route?.gateway ?? null;
    f.route_src = route?.route_src ?? null;
    f.route_table = route?.route_table ?? null;
    f.rname = this.rnames[s] ?? null;
    f.family = this.f[r + FAMILY] === 6 ? 6 : 4;
    f.saddr = this.text[t + SADDR] ?? '';
    f.sport = this.f[r + SPORT];
    f.daddr = this.text[t + DADDR] ?? '';
    f.dport = this.f[r + DPORT];
    f.state = stateName(this.f[r + STATE]);
    const owned = this.f[r + OWNED] === 1;
    f.pid = owned ? this.f[r + PID] : null;
    f.comm = owned ? this.text[t + COMM] : null;
    f.cgroup = owned ? orNull(this.f[r + CGROUP]) : null;
    f.container = f.cgroup === null || this.containers === undefined ? null : (this.containers.lookup(f.cgroup) ?? null);
    f.tx_bytes = this.f[r + TX_BYTES];
    f.rx_bytes = this.f[r + RX_BYTES];
    f.tx_rate = this.f[r + TX_RATE];
    f.rx_rate = this.f[r + RX_RATE];
    f.srtt_us = orNull(this.f[r + SRTT_US]);
    f.retrans = this.f[r + RETRANS];
    f.rx_queue = this.f[r + RX_QUEUE];
    f.tx_queue = this.f[r + TX_QUEUE];
    f.opened = orNull(this.f[r + OPENED]);
    f.closed = orNull(this.f[r + CLOSED]);
    if (proto === 'udp') {
      f.tx_datagrams = this.f[r + TX_DATAGRAMS];
      f.rx_datagrams = this.f[r + RX_DATAGRAMS];
      f.drops = this.f[r + DROPS];
    } else if (f === this.scratch) {
      f.tx_datagrams = undefined;
      f.rx_datagrams = undefined;
      f.drops = undefined;
    }
    return f;
  }

  private ident(s: number): SocketIdent {
    const r = s * W;
    const t = s * T;
    return {
      sock: this.slots.cookie(s),
      netns: this.f[r + NETNS],
      family: this.f[r + FAMILY] === 6 ? 6 : 4,
      saddr: this.text[t + SADDR] ?? '',
      sport: this.f[r + SPORT],
      daddr: this.text[t + DADDR] ?? '',
      dport: this.f[r + DPORT],
    };
  }
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
