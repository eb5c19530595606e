/** Events (state, connect, accept, close, UDP, DNS) to and from their protobuf Event: a new field is a line in each direction here. */
import { EventBase, NettraceEvent, UdpEvent } from '../events';
import { connectErrno, connectResult } from '../tcp';
import { addrBytes, identOf, InvalidFrame, msToUs, nullable, num, ownerOf, peerFrom, socketOf, stateNumber, stateOf, usToMs } from './fields';
import { nettrace } from './nettrace.pb';
import pb = nettrace.v1;

export function eventOf(e: NettraceEvent): pb.Event.$Properties {
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

export function eventFrom(e: pb.Event): NettraceEvent {
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
