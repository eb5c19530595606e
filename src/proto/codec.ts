/**
 * The one mapping between nettrace's TypeScript objects and proto/nettrace.proto's messages, both ways.
 * A new field is a line in each direction here (and one in the .proto).
 */
import { CpuCounts, FlowSteering, MatrixCell } from '../steering/types';
import { formatAddr } from '../decode';
import { EventBase, NettraceEvent, UdpEvent } from '../events';
import { parseIp } from '../filter/addr';
import { Container, QosClass, Runtime } from '../flows/cgroup-names';
import { Nat } from '../flows/nat';
import { FlowSnapshot, Rollup } from '../flows/rollup';
import { SocketIdent, SocketOwner } from '../flows/snapshot';
import { Flow } from '../flows/flow';
import { connectErrno, connectResult, TCP_STATES, TcpState } from '../tcp';
import { TracerStats } from '../trace-options';
import { nettrace } from './nettrace.pb';
import pb = nettrace.v1;

export const MAGIC = 'nettrace';
export const FORMAT_VERSION = 1;

/** The first frame: who wrote the stream, where and when. */
export interface StreamHeader {
  type: 'header';
  version: number;
  producer: string;
  hostname: string;
  /** Wall clock, ms since the epoch. */
  started: number;
  command: string;
}

export interface StatsRecord extends TracerStats {
  type: 'stats';
  /** Wall clock, ms since the epoch. */
  ts: number;
  /** Records the CLI did not write because the reader of its output was behind. */
  outputDrops?: number;
}

/** A flow whose segments are processed on other CPUs than its reader's (RPS/RFS, see the .proto). */
export interface SteeringRecord extends SocketIdent, SocketOwner {
  type: 'steering';
  ts: number;
  processed_cpus: number[];
  read_cpus: number[];
  /** Share of received segments processed on the reader's CPU, 0 to 1. */
  locality: number;
}

/** Everything a stream carries. */
export type StreamItem = StreamHeader | NettraceEvent | FlowSnapshot | StatsRecord | SteeringRecord;

/** A frame that decodes as protobuf but does not make sense as nettrace's (wrong address length, ...). */
export class InvalidFrame extends Error {}

type Long = { toNumber(): number };
type U64 = number | Long | null | undefined;

function num(v: U64): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

const msToUs = (ms: number): number => Math.round(ms * 1000);
const usToMs = (us: U64): number => num(us) / 1000;
const optional = <T, U>(v: T | null | undefined, f: (v: T) => U): U | undefined => (v === null || v === undefined ? undefined : f(v));
const nullable = <T, U>(v: T | null | undefined, f: (v: T) => U): U | null => (v === null || v === undefined ? null : f(v));

// --- to protobuf ---

/** The address's bytes for its family: parseIp reads ::ffff:a.b.c.d as IPv4, an IPv6 socket keeps all 16. */
function addrBytes(text: string, family: 4 | 6): Uint8Array {
  const ip = parseIp(text);
  if (!ip) throw new InvalidFrame(`'${text}' is not an IP address`);
  if (ip.family === family) return ip.bytes;
  if (family === 4) throw new InvalidFrame(`'${text}' is not an IPv4 address`);
  return Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip.bytes]);
}

function socketOf(s: SocketIdent): pb.Socket.$Properties {
  const { sock, netns, family, sport, dport } = s;
  return { sock, netns, family, saddr: addrBytes(s.saddr, family), sport, daddr: addrBytes(s.daddr, family), dport };
}

function ownerOf(o: SocketOwner & { tid?: number | null; uid?: number | null }): pb.Owner.$Properties | undefined {
  if (o.pid === null) return undefined;
  return { pid: o.pid, comm: o.comm ?? '', tid: o.tid ?? undefined, uid: o.uid ?? undefined, cgroup: o.cgroup ?? undefined };
}

const stateNumber = (s: TcpState): number => TCP_STATES.indexOf(s);

function eventOf(e: NettraceEvent): pb.Event.$Properties {
  const out: pb.Event.$Properties = { ts_us: msToUs(e.ts), cpu: e.cpu, socket: socketOf(e), owner: ownerOf(e) };
  switch (e.type) {
    case 'state':
      out.state = { old_state: stateNumber(e.old), new_state: stateNumber(e.new), old_us: e.old_us ?? undefined };
      break;
    case 'connect':
      out.connect = { error: connectErrno(e.result), latency_us: e.latency_us };
      break;
    case 'accept':
      out.accept = { queued_us: e.queued_us };
      break;
    case 'close':
      out.close = {
        old_state: stateNumber(e.old),
        duration_us: e.duration_us ?? undefined,
        tx_bytes: e.tx_bytes,
        rx_bytes: e.rx_bytes,
        segs_out: e.segs_out,
        segs_in: e.segs_in,
        retrans: e.retrans,
        srtt_us: e.srtt_us,
      };
      break;
    case 'udp':
      out.udp = {
        event: e.event === 'open' ? pb.Udp.Kind.OPEN : pb.Udp.Kind.CLOSE,
        duration_us: e.duration_us ?? undefined,
        tx_bytes: e.tx_bytes,
        rx_bytes: e.rx_bytes,
        tx_datagrams: e.tx_datagrams,
        rx_datagrams: e.rx_datagrams,
        drops: e.drops,
        peers: e.peers?.map((p) => ({ ...p, daddr: addrBytes(p.daddr, p.family) })),
        other_peers: e.other_peers ?? undefined,
      };
      break;
    case 'dns':
      out.dns = {
        proto: e.proto,
        id: e.id,
        name: e.name,
        qtype: e.qtype,
        rcode: e.rcode ?? undefined,
        answers: e.answers,
        latency_us: e.latency_us ?? undefined,
        timeout: e.timeout,
        truncated: e.truncated,
      };
      break;
  }
  return out;
}

function flowOf(f: Flow): pb.Flow.$Properties {
  return {
    socket: socketOf(f),
    owner: ownerOf(f),
    state: stateNumber(f.state),
    tx_bytes: f.tx_bytes,
    rx_bytes: f.rx_bytes,
    tx_rate: f.tx_rate,
    rx_rate: f.rx_rate,
    srtt_us: f.srtt_us ?? undefined,
    retrans: f.retrans,
    rx_queue: f.rx_queue,
    tx_queue: f.tx_queue,
    opened_us: optional(f.opened, msToUs),
    first_seen_us: msToUs(f.first_seen),
    closed_us: optional(f.closed, msToUs),
    ifname: f.ifname ?? undefined,
    gateway: f.gateway ?? undefined,
    route_src: f.route_src ?? undefined,
    route_table: f.route_table ?? undefined,
    steering: f.steering === null ? undefined : steeringOf(f.steering),
    proto: f.proto,
    tx_datagrams: f.tx_datagrams,
    rx_datagrams: f.rx_datagrams,
    drops: f.drops,
    peers: f.peers?.map((p) => ({ ...p, daddr: addrBytes(p.daddr, p.family) })),
    rname: f.rname ?? undefined,
    container: f.container === null ? undefined : containerOf(f.container),
    nat: f.nat === null ? undefined : { ...f.nat, saddr: addrBytes(f.nat.saddr, f.family), daddr: addrBytes(f.nat.daddr, f.family) },
  };
}

function natFrom(n: pb.Nat.$Properties, family: 4 | 6): Nat {
  return {
    saddr: addrText(n.saddr, family, 'NAT source'),
    sport: port(n.sport),
    daddr: addrText(n.daddr, family, 'NAT destination'),
    dport: port(n.dport),
    kind: n.kind === 'dnat' || n.kind === 'both' ? n.kind : 'snat',
  };
}

function containerOf(c: Container): pb.Container.$Properties {
  const { path, runtime, id, unit, pod_uid, qos, name } = c;
  return { path, name, runtime: runtime ?? undefined, id: id ?? undefined, unit: unit ?? undefined, pod_uid: pod_uid ?? undefined, qos: qos ?? undefined };
}

function containerFrom(c: pb.Container.$Properties): Container {
  return {
    path: c.path ?? '/',
    runtime: (c.runtime as Runtime | null | undefined) ?? null,
    id: c.id ?? null,
    unit: c.unit ?? null,
    pod_uid: c.pod_uid ?? null,
    qos: (c.qos as QosClass | null | undefined) ?? null,
    name: c.name ?? '',
  };
}

function rollupOf(r: Rollup): pb.Rollup.$Properties {
  const { key, flows, tx_bytes, rx_bytes, tx_rate, rx_rate } = r;
  return { key, pid: r.pid ?? undefined, comm: r.comm ?? undefined, host: r.host ?? undefined, rname: r.rname ?? undefined, flows, tx_bytes, rx_bytes, tx_rate, rx_rate };
}

/** The frame that carries `item`. */
export function toFrame(item: StreamItem): pb.Frame.$Properties {
  switch (item.type) {
    case 'header':
      return {
        header: { magic: MAGIC, version: item.version, producer: item.producer, hostname: item.hostname, started_us: msToUs(item.started), command: item.command },
      };
    case 'snapshot':
      return {
        snapshot: {
          ts_us: msToUs(item.ts),
          flows: item.flows.map(flowOf),
          processes: item.processes.map(rollupOf),
          hosts: item.hosts.map(rollupOf),
          process_hosts: item.process_hosts.map(rollupOf),
        },
      };
    case 'stats': {
      const { records, bytes, batches, drops, missed, evictions } = item;
      const more = {
        queue_drops: item.queueDrops,
        snapshot_drops: item.snapshotDrops,
        flow_evictions: item.flowEvictions,
        name_evictions: item.nameEvictions,
        ring_produced: item.ringProduced,
        output_drops: item.outputDrops,
        drops_by_kind: item.dropsByKind,
        hook_runs: item.hookRuns,
      };
      return { stats: { ts_us: msToUs(item.ts), records, bytes, batches, drops, missed, evictions, ...more } };
    }
    case 'steering':
      return {
        steering: {
          ts_us: msToUs(item.ts),
          socket: socketOf(item),
          owner: ownerOf(item),
          processed_cpus: item.processed_cpus,
          read_cpus: item.read_cpus,
          locality: item.locality,
        },
      };
    default:
      return { event: eventOf(item) };
  }
}

// --- from protobuf ---

function addrText(bytes: Uint8Array | null | undefined, family: 4 | 6, what: string): string {
  const want = family === 4 ? 4 : 16;
  if (!bytes || bytes.length !== want) throw new InvalidFrame(`${what} has ${bytes?.length ?? 0} bytes, IPv${family} needs ${want}`);
  return formatAddr(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), 0, family);
}

function identOf(s: pb.Socket.$Properties | null | undefined): SocketIdent {
  if (!s) throw new InvalidFrame('no socket');
  if (s.family !== 4 && s.family !== 6) throw new InvalidFrame(`family ${s.family ?? 0} is neither 4 nor 6`);
  const family = s.family;
  return {
    sock: num(s.sock),
    netns: s.netns ?? 0,
    family,
    saddr: addrText(s.saddr, family, 'the local address'),
    sport: port(s.sport),
    daddr: addrText(s.daddr, family, 'the remote address'),
    dport: port(s.dport),
  };
}

function port(p: number | null | undefined): number {
  if ((p ?? 0) > 65535) throw new InvalidFrame(`port ${p} is out of range`);
  return p ?? 0;
}

function stateOf(n: number | null | undefined): TcpState {
  const s = TCP_STATES[n ?? 0];
  if (s === undefined) throw new InvalidFrame(`TCP state ${n} is unknown`);
  return s;
}

function ownerFields(o: pb.Owner.$Properties | null | undefined): SocketOwner {
  return o ? { pid: o.pid ?? 0, comm: o.comm ?? '', cgroup: nullable(o.cgroup, num) } : { pid: null, comm: null, cgroup: null };
}

function eventFrom(e: pb.Event): NettraceEvent {
  const s = identOf(e.socket);
  const o = e.owner;
  const base: EventBase = {
    ts: usToMs(e.ts_us),
    cpu: e.cpu,
    sock: s.sock,
    netns: s.netns,
    pid: o ? (o.pid ?? 0) : null,
    tid: o ? (o.tid ?? 0) : null,
    uid: o ? (o.uid ?? 0) : null,
    comm: o ? (o.comm ?? '') : null,
    cgroup: o ? num(o.cgroup) : null,
    family: s.family,
    saddr: s.saddr,
    sport: s.sport,
    daddr: s.daddr,
    dport: s.dport,
  };
  switch (e.kind) {
    case 'state': {
      const k = e.state!;
      return { type: 'state', ...base, old: stateOf(k.old_state), new: stateOf(k.new_state), old_us: nullable(k.old_us, num) };
    }
    case 'connect':
      return { type: 'connect', ...base, result: connectResult(e.connect!.error ?? 0), latency_us: num(e.connect!.latency_us) };
    case 'accept':
      return { type: 'accept', ...base, queued_us: num(e.accept!.queued_us) };
    case 'close': {
      const k = e.close!;
      return {
        type: 'close',
        ...base,
        old: stateOf(k.old_state),
        duration_us: nullable(k.duration_us, num),
        tx_bytes: num(k.tx_bytes),
        rx_bytes: num(k.rx_bytes),
        segs_out: k.segs_out ?? 0,
        segs_in: k.segs_in ?? 0,
        retrans: k.retrans ?? 0,
        srtt_us: k.srtt_us ?? 0,
      };
    }
    case 'udp': {
      const k = e.udp!;
      return {
        type: 'udp',
        ...base,
        event: k.event === pb.Udp.Kind.OPEN ? 'open' : 'close',
        duration_us: nullable(k.duration_us, num),
        tx_bytes: num(k.tx_bytes),
        rx_bytes: num(k.rx_bytes),
        tx_datagrams: num(k.tx_datagrams),
        rx_datagrams: num(k.rx_datagrams),
        drops: num(k.drops),
        ...udpPeersFrom(k),
      };
    }
    case 'dns': {
      const k = e.dns!;
      const answers = (k.answers ?? []).map((a) => ({ name: a.name ?? '', type: a.type ?? '', ttl: a.ttl ?? 0, data: a.data ?? '' }));
      return {
        type: 'dns',
        ...base,
        proto: k.proto === 'tcp' ? 'tcp' : 'udp',
        id: k.id ?? 0,
        name: k.name ?? '',
        qtype: k.qtype ?? '',
        rcode: k.rcode ?? null,
        answers,
        addresses: answers.filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => a.data),
        cnames: answers.filter((a) => a.type === 'CNAME').map((a) => a.data),
        latency_us: nullable(k.latency_us, num),
        timeout: k.timeout ?? false,
        truncated: k.truncated ?? false,
      };
    }
    default:
      throw new InvalidFrame('event of no known kind');
  }
}

function flowFrom(f: pb.Flow.$Properties): Flow {
  return {
    ...identOf(f.socket),
    ...ownerFields(f.owner),
    state: stateOf(f.state),
    tx_bytes: num(f.tx_bytes),
    rx_bytes: num(f.rx_bytes),
    tx_rate: f.tx_rate ?? 0,
    rx_rate: f.rx_rate ?? 0,
    srtt_us: f.srtt_us ?? null,
    retrans: f.retrans ?? 0,
    rx_queue: f.rx_queue ?? 0,
    tx_queue: f.tx_queue ?? 0,
    opened: nullable(f.opened_us, usToMs),
    first_seen: usToMs(f.first_seen_us),
    closed: nullable(f.closed_us, usToMs),
    ifname: f.ifname ?? null,
    gateway: f.gateway ?? null,
    route_src: f.route_src ?? null,
    route_table: f.route_table ?? null,
    rname: f.rname ?? null,
    steering: f.steering ? steeringFrom(f.steering) : null,
    container: f.container ? containerFrom(f.container) : null,
    nat: f.nat ? natFrom(f.nat, f.socket?.family === 6 ? 6 : 4) : null,
    ...udpFieldsFrom(f),
  };
}

function countsOf(c: CpuCounts): pb.CpuCounts.$Properties {
  return { counts: Object.fromEntries(Object.entries(c).map(([cpu, n]) => [cpu, n])) };
}

function countsFrom(c: pb.CpuCounts.$Properties | null | undefined): CpuCounts {
  const out: CpuCounts = {};
  for (const [cpu, n] of Object.entries(c?.counts ?? {})) out[Number(cpu)] = num(n as U64);
  return out;
}

function steeringOf(s: FlowSteering): pb.FlowSteering.$Properties {
  return {
    segs: s.segs,
    processed_on: countsOf(s.processed_on),
    entered_on: s.entered_on === null ? undefined : countsOf(s.entered_on),
    read_on: countsOf(s.read_on),
    reads: s.reads,
    read_bytes: s.read_bytes,
    reader_cpu: s.reader_cpu ?? undefined,
    reader_pid: s.reader_pid ?? undefined,
    known_segs: s.known_segs,
    local_segs: s.local_segs,
    locality: s.locality ?? undefined,
    cells: s.cells.map(([processed_cpu, read_cpu, segs]) => ({ processed_cpu, read_cpu, segs })),
    ifindex: s.ifindex ?? undefined,
    interface: s.interface ?? undefined,
  };
}

function steeringFrom(s: pb.FlowSteering.$Properties): FlowSteering {
  return {
    segs: num(s.segs),
    processed_on: countsFrom(s.processed_on),
    entered_on: s.entered_on ? countsFrom(s.entered_on) : null,
    read_on: countsFrom(s.read_on),
    reads: num(s.reads),
    read_bytes: num(s.read_bytes),
    reader_cpu: s.reader_cpu ?? null,
    reader_pid: s.reader_pid ?? null,
    known_segs: num(s.known_segs),
    local_segs: num(s.local_segs),
    locality: s.locality ?? null,
    cells: (s.cells ?? []).map((c) => [c.processed_cpu ?? 0, c.read_cpu ?? 0, num(c.segs)] as MatrixCell),
    ifindex: s.ifindex ?? null,
    interface: s.interface ?? null,
  };
}

function countsByName(m: { [k: string]: U64 } | null | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, num(v)]));
}

/** One remote endpoint's traffic, as a flow and a close record both carry it. */
function peerFrom(p: pb.Peer.$Properties) {
  const family = p.daddr?.length === 16 ? 6 : 4;
  return {
    family: family as 4 | 6,
    daddr: addrText(p.daddr, family, 'a peer address'),
    dport: port(p.dport),
    tx_bytes: num(p.tx_bytes),
    rx_bytes: num(p.rx_bytes),
    tx_datagrams: num(p.tx_datagrams),
    rx_datagrams: num(p.rx_datagrams),
  };
}

/** The peers of a close record; absent unless the record was a close of an unconnected socket that carried them. */
function udpPeersFrom(k: pb.Udp.$Properties): Pick<UdpEvent, 'peers' | 'other_peers'> {
  if (!k.peers?.length && !k.other_peers) return {};
  const peers = (k.peers ?? []).map(peerFrom);
  const o = k.other_peers;
  const other = o
    ? { endpoints: o.endpoints ?? 0, tx_bytes: num(o.tx_bytes), rx_bytes: num(o.rx_bytes), tx_datagrams: num(o.tx_datagrams), rx_datagrams: num(o.rx_datagrams) }
    : null;
  return { peers, other_peers: other };
}

function udpFieldsFrom(f: pb.Flow.$Properties): Pick<Flow, 'proto' | 'tx_datagrams' | 'rx_datagrams' | 'drops' | 'peers'> {
  if (f.proto !== 'udp') return { proto: 'tcp' };
  const peers = f.peers?.length
    ? f.peers.map((p) => {
        return {
          ...peerFrom(p),
          tx_rate: p.tx_rate ?? 0,
          rx_rate: p.rx_rate ?? 0,
        };
      })
    : undefined;
  return { proto: 'udp', tx_datagrams: num(f.tx_datagrams), rx_datagrams: num(f.rx_datagrams), drops: num(f.drops), ...(peers ? { peers } : {}) };
}

function rollupFrom(r: pb.Rollup.$Properties): Rollup {
  return {
    key: r.key ?? '',
    pid: r.pid ?? null,
    comm: r.comm ?? null,
    host: r.host ?? null,
    rname: r.rname ?? null,
    flows: r.flows ?? 0,
    tx_bytes: num(r.tx_bytes),
    rx_bytes: num(r.rx_bytes),
    tx_rate: r.tx_rate ?? 0,
    rx_rate: r.rx_rate ?? 0,
  };
}

/** The item a decoded frame carries; undefined for a frame kind this version does not know. */
export function fromFrame(frame: pb.Frame): StreamItem | undefined {
  switch (frame.body) {
    case 'header': {
      const h = frame.header!;
      if (h.magic !== MAGIC) throw new InvalidFrame('the header is not nettrace\'s');
      return { type: 'header', version: h.version ?? 0, producer: h.producer ?? '', hostname: h.hostname ?? '', started: usToMs(h.started_us), command: h.command ?? '' };
    }
    case 'event':
      return eventFrom(frame.event as pb.Event);
    case 'snapshot': {
      const s = frame.snapshot!;
      return {
        type: 'snapshot',
        ts: usToMs(s.ts_us),
        flows: (s.flows ?? []).map(flowFrom),
        processes: (s.processes ?? []).map(rollupFrom),
        hosts: (s.hosts ?? []).map(rollupFrom),
        process_hosts: (s.process_hosts ?? []).map(rollupFrom),
      };
    }
    case 'stats': {
      const s = frame.stats!;
      return {
        type: 'stats',
        ts: usToMs(s.ts_us),
        records: num(s.records),
        bytes: num(s.bytes),
        batches: num(s.batches),
        drops: num(s.drops),
        missed: num(s.missed),
        evictions: num(s.evictions),
        queueDrops: num(s.queue_drops),
        snapshotDrops: num(s.snapshot_drops),
        flowEvictions: num(s.flow_evictions),
        nameEvictions: num(s.name_evictions),
        ringProduced: num(s.ring_produced),
        dropsByKind: countsByName(s.drops_by_kind) as TracerStats['dropsByKind'],
        hookRuns: countsByName(s.hook_runs) as TracerStats['hookRuns'],
        ...(s.output_drops === null || s.output_drops === undefined ? {} : { outputDrops: num(s.output_drops) }),
      };
    }
    case 'steering': {
      const s = frame.steering!;
      return {
        type: 'steering',
        ts: usToMs(s.ts_us),
        ...identOf(s.socket),
        ...ownerFields(s.owner),
        processed_cpus: s.processed_cpus ?? [],
        read_cpus: s.read_cpus ?? [],
        locality: s.locality ?? 0,
      };
    }
    default:
      return undefined;
  }
}
