/**
 * Socket metrics of a running Tracer: opens, accepts, closes, refused connects and
 * resets per process from the event stream; bytes and retransmits per process,
 * per remote host, per output interface and per gateway, sockets by state, and
 * UDP datagrams and drops, and (with serve --steering) receive steering's
 * segments and locality, from the flow table (TCP and UDP), which a kernel
 * snapshot refreshes every `refreshMs`.
 */
import { RecordCursor } from '../record-cursor';
import { CommNames } from '../flows/comm-names';
import { FlowMonitor } from '../flows/flow-monitor';
import { CgroupResolver } from '../flows/cgroups';
import { RouteResolver } from '../flows/routes';
import { SocketIdent, SocketOwner, SocketRow } from '../flows/snapshot';
import { Flow } from '../flows/flow';
import { Kind, TcpStateCode } from '../layout';
import { connectResult, stateName, TCP_STATES, TcpState } from '../tcp';
import { Tracer } from '../tracer';
import { LabelBudget } from './labels';
import { CounterVec, Histogram, MetricFamily, MetricSource } from './model';

export interface TcpMetricsOptions {
  /** Values of the `comm` and of the `host` label that get series of their own (default 25 each); the rest count as `other`. */
  top?: number;
  /** A held label value idle this long gives its place up (default 10 minutes). */
  idleMs?: number;
  /** How often the kernel snapshot refreshes bytes, retransmits and states (default 1000 ms, at most 5000). */
  refreshMs?: number;
  /** Only sockets this accepts count towards bytes, retransmits and states (the tracer's filter does the events). */
  match?: (s: SocketIdent & SocketOwner & { state: TcpState; proto: 'tcp' | 'udp' }) => boolean;
  /** Told of a failed refresh (the tracer keeps running). */
  onError?: (e: unknown) => void;
  /**
   * Also count remote bytes per DNS name (nettrace_remote_name_bytes, label `name`, capped by `top` like the
   * others), the name each flow's remote address was looked up by; needs a tracer with the dns events. Off by
   * default: names are as many as programs look up.
   */
  names?: boolean;
}

/** Seconds: 50 us to 10 s, as loopback, LAN and WAN round trips spread. */
export const RTT_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** A socket that reaches CLOSE from one of these ended without the FIN handshake: a reset, sent or received. */
const ABORTIVE = new Set<number>([TcpStateCode.ESTABLISHED, TcpStateCode.SYN_RECV, TcpStateCode.FIN_WAIT1, TcpStateCode.CLOSE_WAIT]);

/** What one batch's records add to a process's counters. */
interface BatchCounts {
  records: number;
  connects: Map<string, number>;
  accepts: number;
  closes: number;
  resets: number;
}

interface Counted {
  tx: number;
  rx: number;
  retrans: number;
  txDatagrams: number;
  rxDatagrams: number;
  drops: number;
  /** Receive steering: segments processed while the reader's CPU was known, and of those on that CPU. */
  knownSegs: number;
  localSegs: number;
}

export class TcpMetrics implements MetricSource {
  readonly monitor: FlowMonitor;
  private readonly processes: LabelBudget;
  private readonly hosts: LabelBudget;
  private readonly containers: LabelBudget;
  private readonly names: LabelBudget;
  private readonly connects = new CounterVec('nettrace_tcp_connects', 'Active opens resolved, by owner and result (ok, refused, timeout or the errno name).', '{connection}', ['comm', 'result']);
  private readonly accepts = new CounterVec('nettrace_tcp_accepts', 'Passive opens handed to a process by accept().', '{connection}', ['comm']);
  private readonly closes = new CounterVec('nettrace_tcp_closes', 'Sockets that reached CLOSE (listeners excepted), by owner.', '{connection}', ['comm']);
  private readonly resets = new CounterVec(
    'nettrace_tcp_resets',
    'Connections that ended without the FIN handshake (reset sent or received, or aborted): CLOSE from ESTABLISHED, SYN_RECV, FIN_WAIT1 or CLOSE_WAIT.',
    '{connection}',
    ['comm'],
  );
  private readonly processBytes = new CounterVec('nettrace_process_bytes', 'Data bytes sent (acknowledged, direction="tx") and received (direction="rx") by process.', 'By', ['comm', 'direction']);
  private readonly hostBytes = new CounterVec('nettrace_remote_bytes', 'Data bytes sent (direction="tx") and received (direction="rx") by remote address.', 'By', ['host', 'direction']);
  private readonly containerBytes = new CounterVec(
    'nettrace_container_bytes',
    'Data bytes sent and received by container or service of the owner\'s cgroup (a container id\'s 12 digits, a systemd unit, or the cgroup path; "-" unknown).',
    'By',
    ['container', 'direction'],
  );
  private readonly nameBytes = new CounterVec(
    'nettrace_remote_name_bytes',
    'Data bytes sent (direction="tx") and received (direction="rx") by the DNS name the remote address was looked up by.',
    'By',
    ['name', 'direction'],
  );
  private readonly interfaceBytes = new CounterVec('nettrace_interface_bytes', 'Data bytes sent and received by output interface of the flow\'s route (as ip route get says it).', 'By', ['ifname', 'direction']);
  private readonly gatewayBytes = new CounterVec('nettrace_gateway_bytes', 'Data bytes sent and received by gateway of the flow\'s route ("direct" when none).', 'By', ['gateway', 'direction']);
  private readonly udpDatagrams = new CounterVec('nettrace_udp_datagrams', 'UDP datagrams sent (direction="tx") and received (direction="rx") by process.', '{datagram}', ['comm', 'direction']);
  private readonly udpDrops = new CounterVec('nettrace_udp_drops', 'Datagrams the kernel dropped on UDP sockets (receive buffer full...), by process.', '{datagram}', ['comm']);
  private readonly steeringSegs = new CounterVec(
    'nettrace_steering_segments',
    'Received segments processed while the reader\'s CPU was known (where="any"), and of those on that CPU (where="reader_cpu"); with serve --steering. Locality is the ratio of their rates.',
    '{segment}',
    ['comm', 'where'],
  );
  private readonly routes = new RouteResolver();
  private readonly retransmits = new CounterVec('nettrace_tcp_retransmits', 'Segments retransmitted, by process.', '{segment}', ['comm']);
  private readonly srtt = new Histogram('nettrace_tcp_rtt_seconds', 'Smoothed round-trip time of each connection when it closed.', 's', RTT_BUCKETS);
  private readonly connectLatency = new Histogram('nettrace_tcp_connect_duration_seconds', 'Time from SYN_SENT to the outcome of each active open.', 's', RTT_BUCKETS);
  private readonly counted = new Map<number, Counted>();
  private readonly comms = new CommNames();
  private rows: SocketRow[] = [];
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly tracer: Tracer,
    private readonly options: TcpMetricsOptions = {},
  ) {
    const top = options.top ?? 25;
    const idleMs = options.idleMs ?? 600_000;
    this.processes = new LabelBudget(top, idleMs);
    this.hosts = new LabelBudget(top, idleMs);
    this.names = new LabelBudget(top, idleMs);
    
    this.containers = new LabelBudget(top, idleMs);
    this.monitor = new FlowMonitor(tracer, {}, this.routes, { containers: new CgroupResolver() });
    this.unsubscribe = tracer.onBatch((c) => this.apply(c));
    // sockets that predate nettrace: what they moved before it started is not counted
    this.refresh(Date.now(), false);
    // closed flows stay in the table 5 s: refreshing more often than that counts each one's last bytes
    this.timer = setInterval(() => this.refresh(), Math.min(options.refreshMs ?? 1000, 5000));
    this.timer.unref();
  }

  /** Takes a kernel snapshot and counts what every flow sent and received since the last one (or, with `count` false, only notes it). */
  refresh(now = Date.now(), count = true): void {
    try {
      this.rows = this.monitor.refresh(now);
    } catch (e) {
      this.options.onError?.(e);
      return;
    }
    // counted once this refresh's routes are known, so that its bytes land on their interface and gateway too
    void this.monitor.routesSettled().then(() => this.count(now, count));
  }

  private count(now: number, count: boolean): void {
    const match = this.options.match;
    const table = this.monitor.table;
    table.visit((f) => {
      if (match && !match(f)) return;
      if (count) this.countFlow(f, now);
      else this.counted.set(f.sock, counts(f));
    });
    for (const sock of this.counted.keys()) if (!table.has(sock)) this.counted.delete(sock);
    for (const v of this.processes.sweep(now)) for (const c of this.byProcess()) c.drop('comm', v);
    for (const v of this.hosts.sweep(now)) this.hostBytes.drop('host', v);
    for (const v of this.containers.sweep(now)) this.containerBytes.drop('container', v);
    for (const v of this.names.sweep(now)) this.nameBytes.drop('name', v);
  }

  families(): MetricFamily[] {
    const match = this.options.match;
    const states = new Map<TcpState, number>(TCP_STATES.filter((s) => s !== 'UNKNOWN').map((s) => [s, 0]));
    for (const r of this.rows) {
      const state = stateName(r.state);
      if (!match || match({ ...r, state, proto: 'tcp' })) states.set(state, (states.get(state) ?? 0) + 1);
    }
    const udp = new Map<string, number>([['connected', 0], ['unconnected', 0]]);
    let known = 0;
    let local = 0;
    this.monitor.table.visit((f) => {
      if (match && !match(f)) return;
      if (f.proto === 'udp' && f.closed === null) {
        const kind = f.dport === 0 ? 'unconnected' : 'connected';
        udp.set(kind, udp.get(kind)! + 1);
      }
      if (f.steering) {
        known += f.steering.known_segs;
        local += f.steering.local_segs;
      }
    });
    const steering: MetricFamily[] = this.tracer.steeringEnabled
      ? [
          {
            name: 'nettrace_steering_locality_ratio',
            help: 'Share of the received segments of the flows now in the table processed on the CPU their reader last ran on (RPS/RFS); with serve --steering.',
            unit: '1',
            kind: 'gauge',
            series: known > 0 ? [{ labels: {}, value: local / known }] : [],
          },
        ]
      : [];
    return [
      ...steering,
      {
        name: 'nettrace_udp_sockets',
        help: 'Open UDP sockets, connected to one peer or not, as of the last kernel snapshot.',
        unit: '{socket}',
        kind: 'gauge',
        series: [...udp].map(([kind, value]) => ({ labels: { kind }, value })),
      },
      this.interfaceBytes.family(),
      this.gatewayBytes.family(),
      {
        name: 'nettrace_tcp_sockets',
        help: 'TCP sockets in this network namespace by state, as of the last kernel snapshot.',
        unit: '{socket}',
        kind: 'gauge',
        series: [...states].map(([state, value]) => ({ labels: { state }, value })),
      },
      ...this.byProcess().map((c) => c.family()),
      this.hostBytes.family(),
      this.containerBytes.family(),
      ...(this.options.names ? [this.nameBytes.family()] : []),
      this.srtt.family(),
      this.connectLatency.family(),
    ];
  }

  /** Flows the table dropped to stay within its cap: their later bytes are not counted. */
  get flowEvictions(): number {
    return this.monitor.table.evictions;
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
    this.monitor.close();
    this.routes.close();
  }

  private byProcess(): CounterVec[] {
    return [this.connects, this.accepts, this.closes, this.resets, this.processBytes, this.retransmits, this.udpDatagrams, this.udpDrops, this.steeringSegs];
  }

  /**
   * The counts of one batch, folded per process first: a counter and a label
   * look-up per record cost more than the rest of the record's path.
   */
  private apply(c: RecordCursor): void {
    const batch = new Map<string, BatchCounts>();
    while (c.next()) {
      const kind = c.kind;
      if (kind === Kind.State) continue;
      const comm = c.hasOwner ? this.comms.name(c, c.pid) : '-';
      let n = batch.get(comm);
      if (n === undefined) batch.set(comm, (n = { records: 0, connects: new Map(), accepts: 0, closes: 0, resets: 0 }));
      n.records++;
      if (kind === Kind.Connect) {
        const result = connectResult(c.err);
        n.connects.set(result, (n.connects.get(result) ?? 0) + 1);
        this.connectLatency.observe(c.latencyNs / 1e9);
      } else if (kind === Kind.Accept) {
        n.accepts++;
      } else if (kind === Kind.Close) {
        n.closes++;
        if (ABORTIVE.has(c.oldState)) n.resets++;
        if (c.srttUs > 0) this.srtt.observe(c.srttUs / 1e6);
      }
    }
    const now = Date.now();
    for (const [name, n] of batch) {
      const comm = this.processes.label(name, n.records, now);
      for (const [result, k] of n.connects) this.connects.inc([comm, result], k);
      if (n.accepts) this.accepts.inc([comm], n.accepts);
      if (n.closes) this.closes.inc([comm], n.closes);
      if (n.resets) this.resets.inc([comm], n.resets);
    }
  }

  /** Counts what the flow moved since it was last counted; `f` may be refilled after (see FlowTable.visit). */
  private countFlow(f: Flow, now: number): void {
    const st = f.steering;
    // most flows of a churn move nothing: they need no entry and no object
    if (f.tx_bytes + f.rx_bytes + f.retrans + (f.tx_datagrams ?? 0) + (f.rx_datagrams ?? 0) + (f.drops ?? 0) + (st ? st.known_segs : 0) === 0) return;
    let seen = this.counted.get(f.sock);
    if (!seen) this.counted.set(f.sock, (seen = { tx: 0, rx: 0, retrans: 0, txDatagrams: 0, rxDatagrams: 0, drops: 0, knownSegs: 0, localSegs: 0 }));
    const current = counts(f);
    const tx = Math.max(0, current.tx - seen.tx);
    const rx = Math.max(0, current.rx - seen.rx);
    const retrans = Math.max(0, current.retrans - seen.retrans);
    const txd = Math.max(0, current.txDatagrams - seen.txDatagrams);
    const rxd = Math.max(0, current.rxDatagrams - seen.rxDatagrams);
    const drops = Math.max(0, current.drops - seen.drops);
    const known = Math.max(0, current.knownSegs - seen.knownSegs);
    const local = Math.max(0, current.localSegs - seen.localSegs);
    if (tx + rx + retrans + txd + rxd + drops + known === 0) return;
    for (const k of Object.keys(current) as (keyof Counted)[]) seen[k] = Math.max(seen[k], current[k]);
    const comm = this.processes.label(f.pid === null ? '-' : (f.comm ?? '-'), tx + rx, now);
    const host = this.hosts.label(f.daddr, tx + rx, now);
    if (tx) this.processBytes.inc([comm, 'tx'], tx);
    if (rx) this.processBytes.inc([comm, 'rx'], rx);
    if (tx) this.hostBytes.inc([host, 'tx'], tx);
    if (rx) this.hostBytes.inc([host, 'rx'], rx);
    const container = this.containers.label(f.container?.name ?? '-', tx + rx, now);
    if (tx) this.containerBytes.inc([container, 'tx'], tx);
    if (rx) this.containerBytes.inc([container, 'rx'], rx);
    if (this.options.names && f.rname && tx + rx > 0) {
      const name = this.names.label(f.rname, tx + rx, now);
      if (tx) this.nameBytes.inc([name, 'tx'], tx);
      if (rx) this.nameBytes.inc([name, 'rx'], rx);
    }
    if (retrans) this.retransmits.inc([comm], retrans);
    if (txd) this.udpDatagrams.inc([comm, 'tx'], txd);
    if (rxd) this.udpDatagrams.inc([comm, 'rx'], rxd);
    if (drops) this.udpDrops.inc([comm], drops);
    if (known) this.steeringSegs.inc([comm, 'any'], known);
    if (local) this.steeringSegs.inc([comm, 'reader_cpu'], local);
    if (f.ifname !== null) {
      const gateway = f.gateway ?? 'direct';
      if (tx) this.interfaceBytes.inc([f.ifname, 'tx'], tx);
      if (rx) this.interfaceBytes.inc([f.ifname, 'rx'], rx);
      if (tx) this.gatewayBytes.inc([gateway, 'tx'], tx);
      if (rx) this.gatewayBytes.inc([gateway, 'rx'], rx);
    }
  }
}

function counts(f: Flow): Counted {
  const s = f.steering;
  return {
    tx: f.tx_bytes,
    rx: f.rx_bytes,
    retrans: f.retrans,
    txDatagrams: f.tx_datagrams ?? 0,
    rxDatagrams: f.rx_datagrams ?? 0,
    drops: f.drops ?? 0,
    knownSegs: s?.known_segs ?? 0,
    localSegs: s?.local_segs ?? 0,
  };
}
