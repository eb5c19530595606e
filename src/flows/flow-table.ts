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
import { Slots } from './slots';
import { Container } from './cgroup-names';
import { Nat, NatTargets, NatWant } from './nat';
import { CgroupResolver } from './cgroups';
import { CommNames } from './comm-names';
import { destinationKey, RouteInfo, RouteTargets, RouteWant } from './routes';

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
  /** The tuple the far end sees when netfilter translates the flow (conntrack), null when it does not (or not yet known). */
  nat: Nat | null;
  /** Who owns the socket's cgroup: container, pod, systemd unit (null until resolved, or with no cgroup known). */
  container: Container | null;
  /** Receive steering since tracing began; null unless the tracer runs the steering hooks. */
  steering: FlowSteering | null;
  /** The DNS name the remote address was looked up by (src/dns/names), null when no lookup seen answered it. */
  rname: string | null;
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
    rname: null,
    ifname: null,
    gateway: null,
    route_src: null,
    route_table: null,
    nat: null,
    container: null,
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

const UNSPECIFIED = new Set(['0.0.0.0', '::']);
const LISTEN = 10;
const UNKNOWN = 0;
const ESTABLISHED = 1;
const SYN_SENT = 2;
const CLOSE = 7;
const TIME_WAIT = 6;
const NEW_SYN_RECV = 12;
const TCP = 0;
const STATE_RECORD = Kind.State; // a module constant, not a property load per record
const UDP = 1;
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

/**
 * Every flow's fields live in per-slot columns (see Slots), so that folding a
 * record in touches a few numbers and makes no object. A Flow object is made
 * for a slot only when someone reads it (flows(), get()) or hangs something on
 * it (a route, steering figures, UDP peers), and is brought up to date from
 * the columns on every read; what hangs on it stays. A slot's object is let go
 * when the slot is: a holder keeps a copy that no longer changes.
 */
export class FlowTable implements RouteTargets, NatTargets {
  private readonly slots: Slots;
  private readonly cap: number;
  private readonly graceMs: number;
  private lastTick: number | undefined;
  private uses = 0;
  /** Flows dropped to stay within the cap. */
  evictions = 0;
  private readonly comms = new CommNames();

  /** Every slot's numbers, W to a slot (see the field offsets above). */
  private readonly f: Float64Array;
  /** Every slot's strings, T to a slot. */
  private readonly text: (string | null)[];
  private readonly objects: (Flow | undefined)[];
  /** Each slot's route, shared by the slots to one destination. */
  private readonly routes: (RouteInfo | undefined)[];
  /** Each slot's translation, once a conntrack look-up found one (see NatResolver). */
  private readonly nats: (Nat | undefined)[];
  /** With a resolver, flows read name their owner's container (a cached look-up by cgroup id). */
  containers: CgroupResolver | undefined;
  /** Each slot's DNS name (see nameFlows), kept from the first that named it. */
  private readonly rnames: (string | undefined)[];
  /** Filled in place for visit(): a flow that nothing keeps needs no object of its own. */
  private readonly scratch: Flow = newFlow({ sock: 0, netns: 0, family: 4, saddr: '', sport: 0, daddr: '', dport: 0 }, 0);
  /** Bytes each UDP peer ("addr|port") had at the last tick, for its rates. */
  private readonly sampledPeers: (Map<string, [number, number]> | undefined)[];

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

  /**
   * Names each flow not named yet whose remote `name(netns, pid, daddr)` knows. A flow keeps
   * the name it was first given: the lookup named the connection, whatever its TTL does later.
   */
  nameFlows(name: (netns: number, pid: number | null, daddr: string) => string | null): void {
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) {
      const r = s * W;
      if (this.rnames[s] !== undefined || this.f[r + DPORT] === 0) continue;
      const n = name(this.f[r + NETNS], this.f[r + OWNED] === 1 ? this.f[r + PID] : null, this.text[s * T + DADDR] ?? '');
      if (n !== null) this.rnames[s] = n;
    }
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

  /**
   * The destinations of flows with no route, or one read before `changes` (a
   * closed flow keeps the route it had). Listeners and unconnected sockets
   * have no destination to route.
   */
  unrouted(changes: number): Map<string, RouteWant> {
    const wants = new Map<string, RouteWant>();
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) {
      const r = s * W;
      const read = this.f[r + ROUTE_READ];
      if (read === changes || (!Number.isNaN(read) && !Number.isNaN(this.f[r + CLOSED]))) continue;
      const daddr = this.text[s * T + DADDR];
      if (this.f[r + STATE] === LISTEN || daddr === null || UNSPECIFIED.has(daddr)) continue;
      const key = destinationKey(this.f[r + NETNS], daddr);
      let w = wants.get(key);
      if (w === undefined) wants.set(key, (w = { netns: this.f[r + NETNS], daddr, pids: new Set() }));
      if (this.f[r + OWNED] === 1) w.pids.add(this.f[r + PID]);
    }
    return wants;
  }

  /** Sets the route of every flow to that destination that wants one (see unrouted). */
  setRoute(key: string, route: RouteInfo, changes: number): void {
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) {
      const r = s * W;
      const read = this.f[r + ROUTE_READ];
      if (read === changes || (!Number.isNaN(read) && !Number.isNaN(this.f[r + CLOSED]))) continue;
      const daddr = this.text[s * T + DADDR];
      if (daddr === null || destinationKey(this.f[r + NETNS], daddr) !== key) continue;
      this.routes[s] = route;
      this.f[r + ROUTE_READ] = changes;
    }
  }

  untranslated(tries: number, max: number): { wants: NatWant[]; more: number } {
    // open flows first: under churn most flows have closed by the next refresh, and the bound would go to them
    const open: NatWant[] = [];
    const closed: NatWant[] = [];
    let waiting = 0;
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) {
      const r = s * W;
      if (this.f[r + NAT_ASKED] >= tries || this.f[r + STATE] === LISTEN || this.f[r + DPORT] === 0) continue;
      const daddr = this.text[s * T + DADDR];
      const saddr = this.text[s * T + SADDR];
      if (daddr === null || saddr === null || UNSPECIFIED.has(daddr)) continue;
      const list = Number.isNaN(this.f[r + CLOSED]) ? open : closed;
      waiting++;
      if (list.length === max) continue;
      const pid = this.f[r + OWNED] === 1 ? this.f[r + PID] : null;
      const proto = PROTOS[this.f[r + PROTO]];
      list.push({ sock: this.slots.cookie(s), netns: this.f[r + NETNS], pid, proto, saddr, sport: this.f[r + SPORT], daddr, dport: this.f[r + DPORT], tries: this.f[r + NAT_ASKED] });
    }
    const wants = open.concat(closed.slice(0, Math.max(0, max - open.length)));
    return { wants, more: waiting - wants.length };
  }

  setNat(sock: number, nat: Nat | null, settled: boolean): void {
    const s = this.slots.find(sock);
    if (s < 0) return;
    this.nats[s] = nat ?? undefined;
    this.f[s * W + NAT_ASKED] = settled ? Infinity : this.f[s * W + NAT_ASKED] + 1;
  }

  namespaces(): number[] {
    const all = new Set<number>();
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) all.add(this.f[s * W + NETNS]);
    return [...all];
  }

  /**
   * Folds one record of the event stream in. Allocates nothing, but the
   * address strings of a socket it has not seen.
   *
   * Most records are a state change of a socket the table holds, whose port
   * and owner it already has: that case stays in this small function, and
   * everything else goes to one function too big for V8 to inline. V8 inlines
   * into a function up to a budget of bytecode; spent on rare paths, it left
   * the cursor's getters as calls, and that halved the records per second.
   */
  applyRecord(c: RecordCursor, clock: Clock): void {
    const s = this.slots.find(c.cookie);
    if (s >= 0 && c.kind === STATE_RECORD && this.settled(c, s)) {
      this.use(s);
      this.transition(c, s * W, clock);
    } else {
      this.applyOther(c, clock, s);
    }
  }

  /** Whether the record brings the slot no new port and no new owner. */
  private settled(c: RecordCursor, s: number): boolean {
    return !this.movesPort(c, s) && !this.newOwner(c, s);
  }

  /** connect() picks the local port after SYN_SENT. */
  private movesPort(c: RecordCursor, s: number): boolean {
    const sport = c.sport;
    return sport !== 0 && this.f[s * W + SPORT] !== sport;
  }

  /** The kernel side captures an owner once or twice per socket: at connect or listen, and at accept. */
  private newOwner(c: RecordCursor, s: number): boolean {
    return c.hasOwner && (this.f[s * W + OWNED] === 0 || this.f[s * W + PID] !== c.pid);
  }

  private transition(c: RecordCursor, r: number, clock: Clock): void {
    const from = c.oldState;
    const to = c.newState;
    this.f[r + STATE] = to;
    // times are worked out only where a field takes them: most records set none
    if (Number.isNaN(this.f[r + OPENED]) && (from === CLOSE || (to !== CLOSE && c.inOldNs === 0))) this.f[r + OPENED] = clock.wallMs(c.tsNs);
    if (to === CLOSE) {
      if (Number.isNaN(this.f[r + CLOSED])) this.f[r + CLOSED] = clock.wallMs(c.tsNs);
    } else if (from === CLOSE) this.f[r + CLOSED] = NaN;
  }

  /** Any record: a socket not seen before, a new port or owner, and every kind of record but state changes. */
  private applyOther(c: RecordCursor, clock: Clock, found: number): void {
    const kind = c.kind;
    if (kind === Kind.Dns) return; // a message, not a socket's state: flows take names from src/dns
    let s = found;
    if (s < 0) s = this.admit(c, clock, kind);
    else this.use(s);
    if (this.movesPort(c, s)) this.bind(c, s);
    if (this.newOwner(c, s)) this.own(c, s);
    if (kind === Kind.State) this.transition(c, s * W, clock);
    else if (kind === Kind.Close) this.applyClose(c, s, clock.wallMs(c.tsNs));
    else if (kind === Kind.Udp) this.applyUdp(c, s, clock.wallMs(c.tsNs));
    else if (kind === Kind.Connect) this.applyOpen(c, s, c.err === 0 ? ESTABLISHED : CLOSE, c.latencyNs, clock);
    else if (kind === Kind.Accept) this.applyOpen(c, s, ESTABLISHED, c.queuedNs, clock);
  }

  /**
   * What an open's outcome says of the state, for a table fed without state
   * records (they would have set it already: a later state stays).
   */
  private applyOpen(c: RecordCursor, s: number, state: number, waitedNs: number, clock: Clock): void {
    const r = s * W;
    const ts = clock.wallMs(c.tsNs);
    const now = this.f[r + STATE];
    if (now === UNKNOWN || now === SYN_SENT) this.f[r + STATE] = state;
    if (Number.isNaN(this.f[r + OPENED])) this.f[r + OPENED] = ts - waitedNs / 1e6;
    if (state === CLOSE && Number.isNaN(this.f[r + CLOSED])) this.f[r + CLOSED] = ts;
  }

  /** A slot for the record's socket, seen for the first time. */
  private admit(c: RecordCursor, clock: Clock, kind: number): number {
    const s = this.insert(c.cookie, clock.wallMs(c.tsNs), kind === Kind.Udp ? UDP : TCP);
    this.setIdent(s, c.netns, c.family, c.saddr, c.sport, c.daddr, c.dport);
    return s;
  }

  private bind(c: RecordCursor, s: number): void {
    this.f[s * W + SPORT] = c.sport;
    this.text[s * T + SADDR] = c.saddr;
  }

  private own(c: RecordCursor, s: number): void {
    const pid = c.pid;
    this.f[s * W + OWNED] = 1;
    this.f[s * W + PID] = pid;
    this.text[s * T + COMM] = this.comms.name(c, pid);
    this.f[s * W + CGROUP] = c.cgroup;
  }

  private applyClose(c: RecordCursor, s: number, ts: number): void {
    const r = s * W;
    this.f[r + TX_BYTES] = Math.max(this.f[r + TX_BYTES], c.txBytes);
    this.f[r + RX_BYTES] = Math.max(this.f[r + RX_BYTES], c.rxBytes);
    this.f[r + SRTT_US] = c.srttUs;
    this.f[r + RETRANS] = c.retrans;
    this.f[r + RX_QUEUE] = 0;
    this.f[r + TX_QUEUE] = 0;
    this.f[r + STATE] = CLOSE; // as its state record says, for a table fed without them
    if (Number.isNaN(this.f[r + OPENED]) && c.lifetimeNs > 0) this.f[r + OPENED] = ts - c.lifetimeNs / 1e6;
    if (Number.isNaN(this.f[r + CLOSED])) this.f[r + CLOSED] = ts;
  }

  private applyUdp(c: RecordCursor, s: number, ts: number): void {
    const r = s * W;
    const t = s * T;
    if (c.udpEvent === UdpEvent.Open) {
      if (Number.isNaN(this.f[r + OPENED])) this.f[r + OPENED] = ts;
      if (this.f[r + STATE] === 0) this.f[r + STATE] = CLOSE;
      return;
    }
    // the release sees the socket's last addresses; v4-mapped use makes an IPv6 socket IPv4
    this.f[r + FAMILY] = c.family;
    this.text[t + SADDR] = c.saddr;
    this.text[t + DADDR] = c.daddr;
    this.f[r + DPORT] = c.dport;
    const { txBytes, rxBytes, txDatagrams, rxDatagrams, drops } = c;
    this.foldUdp(s, { tx_bytes: txBytes, rx_bytes: rxBytes, tx_datagrams: txDatagrams, rx_datagrams: rxDatagrams, drops, rx_queue: 0, tx_queue: 0 });
    this.f[r + STATE] = CLOSE;
    if (Number.isNaN(this.f[r + CLOSED])) this.f[r + CLOSED] = ts;
  }

  /** Folds a kernel snapshot in, taken at `now` (wall ms), in the network namespace `netns`. */
  applySnapshot(rows: SocketRow[], now: number, netns: number): void {
    const seen = new Set<number>();
    for (const r of rows) {
      seen.add(r.sock);
      const s = this.touch(r, now, TCP);
      const k = s * W;
      this.f[k + MISSING] = 0;
      // a socket the stream saw close lingers as its TIME_WAIT twin (same cookie)
      if (Number.isNaN(this.f[k + CLOSED]) || r.state === TIME_WAIT) this.f[k + STATE] = r.state;
      if (r.sport !== 0) this.f[k + SPORT] = r.sport;
      this.adoptOwner(s, r);
      this.f[k + TX_BYTES] = Math.max(this.f[k + TX_BYTES], r.tx_bytes);
      this.f[k + RX_BYTES] = Math.max(this.f[k + RX_BYTES], r.rx_bytes);
      if (r.state !== TIME_WAIT && r.state !== NEW_SYN_RECV) {
        this.f[k + SRTT_US] = r.srtt_us;
        this.f[k + RETRANS] = r.retrans;
        this.f[k + RX_QUEUE] = r.rx_queue;
        this.f[k + TX_QUEUE] = r.tx_queue;
      }
    }
    this.expireUnlisted(TCP, seen, now, netns);
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
      const s = this.touch(r, now, UDP);
      const k = s * W;
      this.f[k + MISSING] = 0;
      if (Number.isNaN(this.f[k + CLOSED])) this.f[k + STATE] = r.state;
      this.setIdent(s, this.f[k + NETNS], r.family, r.saddr, r.sport, r.daddr, r.dport);
      this.adoptOwner(s, r);
      this.foldUdp(s, r);
    }
    this.applyPeers(peers);
    this.expireUnlisted(UDP, seen, now, netns);
  }

  private applyPeers(peers: PeerRow[]): void {
    const bySock = new Map<number, PeerRow[]>();
    for (const p of peers) {
      const list = bySock.get(p.sock);
      if (list) list.push(p);
      else bySock.set(p.sock, [p]);
    }
    for (const [sock, list] of bySock) {
      const s = this.slots.find(sock);
      if (s < 0 || this.f[s * W + PROTO] !== UDP) continue;
      const f = this.flowAt(s);
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
  private expireUnlisted(proto: number, seen: Set<number>, now: number, netns: number): void {
    for (let s = this.slots.after(-1); s !== -1; s = this.slots.after(s)) {
      const r = s * W;
      if (this.f[r + PROTO] !== proto || !Number.isNaN(this.f[r + CLOSED]) || this.f[r + NETNS] !== netns || seen.has(this.slots.cookie(s))) continue;
      if (++this.f[r + MISSING] >= 2) {
        this.f[r + CLOSED] = now;
        this.f[r + STATE] = CLOSE;
      }
    }
  }

  /** Sets owners found outside the stream (see ProcOwners). */
  setOwner(sock: number, pid: number, comm: string, cgroup: number | null = null): void {
    const s = this.slots.find(sock);
    if (s >= 0 && this.f[s * W + OWNED] === 0) {
      this.f[s * W + OWNED] = 1;
      this.f[s * W + PID] = pid;
      this.text[s * T + COMM] = comm;
      this.f[s * W + CGROUP] = cgroup ?? NaN;
    }
  }

  /** Sets a socket's steering figures (see steering/fold); sockets the table does not hold are left out. */
  setSteering(sock: number, st: FlowSteering): void {
    const s = this.slots.find(sock);
    if (s >= 0) this.flowAt(s).steering = st;
  }

  /** Ends an interval at `now`: rates over it, and closed flows past their grace leave. */
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
  private touch(r: SocketIdent, now: number, proto: number): number {
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
  private use(s: number): void {
    if (++this.uses - this.f[s * W + PLACED] > this.cap >> 1) {
      this.slots.moveToBack(s);
      this.f[s * W + PLACED] = this.uses;
    }
  }

  /** A new slot for `sock`, nothing known of it yet; the least recently placed flow leaves to make room. */
  private insert(sock: number, now: number, proto: number): number {
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

  private remove(s: number): void {
    this.slots.remove(s);
    // most slots never had an object made: a read is cheaper than a write to a line elsewhere
    if (this.objects[s] !== undefined) this.objects[s] = undefined;
    if (this.sampledPeers[s] !== undefined) this.sampledPeers[s] = undefined;
    if (this.routes[s] !== undefined) this.routes[s] = undefined;
    if (this.nats[s] !== undefined) this.nats[s] = undefined;
    if (this.rnames[s] !== undefined) this.rnames[s] = undefined;
  }

  private setIdent(s: number, netns: number, family: 4 | 6, saddr: string, sport: number, daddr: string, dport: number): void {
    this.f[s * W + NETNS] = netns;
    this.f[s * W + FAMILY] = family;
    this.text[s * T + SADDR] = saddr;
    this.f[s * W + SPORT] = sport;
    this.text[s * T + DADDR] = daddr;
    this.f[s * W + DPORT] = dport;
  }

  /** The owner the kernel side knew, if it knew one. */
  private adoptOwner(s: number, o: SocketOwner): void {
    if (o.pid === null) return;
    this.f[s * W + OWNED] = 1;
    this.f[s * W + PID] = o.pid;
    this.text[s * T + COMM] = o.comm;
    this.f[s * W + CGROUP] = o.cgroup ?? NaN;
  }

  /** Counters only grow: a snapshot and a close record read the same kernel-side totals at different times. */
  private foldUdp(s: number, t: UdpTotals): void {
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
  private flowAt(s: number): Flow {
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
