/**
 * What every frame's messages are made of, both ways: 64-bit numbers, times, addresses, ports,
 * TCP states, a socket and its owner, and a remote peer's traffic. A value that does not make
 * sense as nettrace's is an InvalidFrame.
 */
import { formatAddr } from '../record-cursor';
import { parseIp } from '../filter/addr';
import { SocketIdent, SocketOwner } from '../flows/snapshot';
import { TCP_STATES, TcpState } from '../tcp';
import { nettrace } from './nettrace.pb';
import pb = nettrace.v1;

/** A frame that decodes as protobuf but does not make sense as nettrace's (wrong address length, ...). */
export class InvalidFrame extends Error {}

type Long = { toNumber(): number };

export type U64 = number | Long | null | undefined;

export function num(v: U64): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export const msToUs = (ms: number): number => Math.round(ms * 1000);

export const usToMs = (us: U64): number => num(us) / 1000;

export const optional = <T, U>(v: T | null | undefined, f: (v: T) => U): U | undefined => (v === null || v === undefined ? undefined : f(v));

export const nullable = <T, U>(v: T | null | undefined, f: (v: T) => U): U | null => (v === null || v === undefined ? null : f(v));

// --- to protobuf ---

/** The address's bytes for its family: parseIp reads ::ffff:a.b.c.d as IPv4, an IPv6 socket keeps all 16. */
export function addrBytes(text: string, family: 4 | 6): Uint8Array {
  const ip = parseIp(text);
  if (!ip) throw new InvalidFrame(`'${text}' is not an IP address`);
  if (ip.family === family) return ip.bytes;
  if (family === 4) throw new InvalidFrame(`'${text}' is not an IPv4 address`);
  return Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip.bytes]);
}

export function socketOf(s: SocketIdent): pb.Socket.$Properties {
  const { sock, netns, family, sport, dport } = s;
  return { sock, netns, family, saddr: addrBytes(s.saddr, family), sport, daddr: addrBytes(s.daddr, family), dport };
}

export function ownerOf(o: SocketOwner & { tid?: number | null; uid?: number | null }): pb.Owner.$Properties | undefined {
  if (o.pid === null) return undefined;
  return { pid: o.pid, comm: o.comm ?? '', tid: o.tid ?? undefined, uid: o.uid ?? undefined, cgroup: o.cgroup ?? undefined };
}

export const stateNumber = (s: TcpState): number => TCP_STATES.indexOf(s);

// --- from protobuf ---

export function addrText(bytes: Uint8Array | null | undefined, family: 4 | 6, what: string): string {
  const want = family === 4 ? 4 : 16;
  if (!bytes || bytes.length !== want) throw new InvalidFrame(`${what} has ${bytes?.length ?? 0} bytes, IPv${family} needs ${want}`);
  return formatAddr(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), 0, family);
}

export function identOf(s: pb.Socket.$Properties | null | undefined): SocketIdent {
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

export function port(p: number | null | undefined): number {
  if ((p ?? 0) > 65535) throw new InvalidFrame(`port ${p} is out of range`);
  return p ?? 0;
}

export function stateOf(n: number | null | undefined): TcpState {
  const s = TCP_STATES[n ?? 0];
  if (s === undefined) throw new InvalidFrame(`TCP state ${n} is unknown`);
  return s;
}

export function ownerFields(o: pb.Owner.$Properties | null | undefined): SocketOwner {
  return o ? { pid: o.pid ?? 0, comm: o.comm ?? '', cgroup: nullable(o.cgroup, num) } : { pid: null, comm: null, cgroup: null };
}

/** One remote endpoint's traffic, as a flow and a close record both carry it. */
export function peerFrom(p: pb.Peer.$Properties) {
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
