/**
 * One flow per socket, kept from two sources: the event stream (every open,
 * transition and close, as they happen) and periodic kernel snapshots (live
 * byte counters, queues, RTT, and sockets that predate tracing). Closed flows
 * stay for a grace period; the table never holds more than `cap` flows, the
 * least recently touched leaving first, and every eviction is counted.
 */
import { RecordCursor } from '../record-cursor';
import { Clock } from '../events';
import { Kind, TcpStateCode, UdpEvent } from '../layout';
import { PeerRow, SocketRow, UdpRow } from './snapshot';
import { FlowSteering } from './flow-steering';
import { Nat, NatTargets, NatWant } from './nat';
import { CommNames } from './comm-names';
import { destinationKey, RouteInfo, RouteTargets, RouteWant } from './routes';
import { PEERS_SHOWN } from './flow';
import { COLUMNS, FlowColumns, FlowTableOptions, PROTOS } from './flow-columns';

export type { FlowTableOptions };

// module constants, not a property load per use on the record path
const { W, T, TCP, UDP, SPORT, STATE, OWNED, PID, OPENED, CLOSED, PROTO, NETNS, FAMILY, DPORT, CGROUP, MISSING } = COLUMNS;
const { TX_BYTES, RX_BYTES, SRTT_US, RETRANS, RX_QUEUE, TX_QUEUE, ROUTE_READ, NAT_ASKED, SADDR, DADDR, COMM } = COLUMNS;
const { LISTEN, UNKNOWN, ESTABLISHED, SYN_SENT, CLOSE, TIME_WAIT, NEW_SYN_RECV } = TcpStateCode;
const STATE_RECORD = Kind.State; // a module constant, not a property load per record
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/** The flow table: what the event stream and the kernel's snapshots say of each socket, folded into its columns (FlowColumns). */
export class FlowTable extends FlowColumns implements RouteTargets, NatTargets {
  private readonly comms = new CommNames();

  constructor(options: FlowTableOptions = {}) {
    super(options);
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
}
