/**
 * Flows of a snapshot (with their steering, container and NAT) and the rollups beside them, to
 * and from protobuf: a new field is a line in each direction here.
 */
import { CpuCounts, FlowSteering, MatrixCell } from '../steering/types';
import { Container, QosClass, Runtime } from '../flows/cgroup-names';
import { Nat } from '../flows/nat';
import { Rollup } from '../flows/rollup';
import { Flow } from '../flows/flow';
import { addrBytes, addrText, identOf, msToUs, nullable, num, optional, ownerFields, ownerOf, peerFrom, port, socketOf, stateNumber, stateOf, U64, usToMs } from './fields';
import { nettrace } from './nettrace.pb';
import pb = nettrace.v1;

export function flowOf(f: Flow): pb.Flow.$Properties {
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

export function flowFrom(f: pb.Flow.$Properties): Flow {
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

export function rollupOf(r: Rollup): pb.Rollup.$Properties {
  const { key, flows, tx_bytes, rx_bytes, tx_rate, rx_rate } = r;
  return { key, pid: r.pid ?? undefined, comm: r.comm ?? undefined, host: r.host ?? undefined, rname: r.rname ?? undefined, flows, tx_bytes, rx_bytes, tx_rate, rx_rate };
}

export function rollupFrom(r: pb.Rollup.$Properties): Rollup {
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
