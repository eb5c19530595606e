/** Decodes the iter/tcp and iter/udp snapshots (one struct per socket, back to back) and the UDP peer counters. */
import { formatAddr } from '../record-cursor';
import { COMM_LEN, FlowRecord, UdpFlowRecord, UdpPeer, UdpPeerBytes } from '../layout';

/** Which socket: its cookie, namespace and both ends. */
export interface SocketIdent {
  /** Socket cookie. */
  sock: number;
  netns: number;
  family: 4 | 6;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
}

/** Its owner; null while none is known. */
export interface SocketOwner {
  pid: number | null;
  comm: string | null;
  cgroup: number | null;
}

/** The owner here is as nettrace saw it connect, listen or accept; null when the socket predates tracing. */
export interface SocketRow extends SocketIdent, SocketOwner {
  state: number;
  uid: number;
  ino: number;
  tx_bytes: number;
  rx_bytes: number;
  rx_queue: number;
  tx_queue: number;
  srtt_us: number;
  retrans: number;
  segs_out: number;
  segs_in: number;
}

/** One UDP socket of the iter/udp snapshot: what ss -uanp shows, plus what nettrace counted. */
export interface UdpRow extends SocketIdent, SocketOwner {
  /** ESTABLISHED (1) when connected, CLOSE (7, ss's UNCONN) otherwise. */
  state: number;
  uid: number;
  ino: number;
  tx_bytes: number;
  rx_bytes: number;
  tx_datagrams: number;
  rx_datagrams: number;
  rx_queue: number;
  tx_queue: number;
  drops: number;
  /** Created while nettrace traced (CLOCK_MONOTONIC ns), or 0. */
  born_ns: number;
}

/** What an unconnected UDP socket exchanged with one remote endpoint. */
export interface PeerRow {
  sock: number;
  family: 4 | 6;
  daddr: string;
  dport: number;
  tx_bytes: number;
  rx_bytes: number;
  tx_datagrams: number;
  rx_datagrams: number;
}

const TWO32 = 4294967296;

const u64At = (buf: Buffer, at: number): number => buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO32;

type SockLayout = typeof FlowRecord.sock;
type OwnerLayout = typeof FlowRecord.owner;

/** The nt_sock and nt_owner every snapshot row starts with. */
function identAndOwner(buf: Buffer, at: number, sock: SockLayout, owner: OwnerLayout): SocketIdent & SocketOwner {
  const family = buf[at + sock.family] === 6 ? 6 : 4;
  const known = buf.readUInt32LE(at + owner.known) !== 0;
  const comm = at + owner.comm;
  const end = buf.indexOf(0, comm);
  return {
    sock: u64At(buf, at + sock.cookie),
    netns: buf.readUInt32LE(at + sock.netns),
    family,
    saddr: formatAddr(buf, at + sock.saddr, family),
    sport: buf.readUInt16LE(at + sock.sport),
    daddr: formatAddr(buf, at + sock.daddr, family),
    dport: buf.readUInt16LE(at + sock.dport),
    pid: known ? buf.readUInt32LE(at + owner.pid) : null,
    comm: known ? buf.toString('latin1', comm, end < 0 || end > comm + COMM_LEN ? comm + COMM_LEN : end) : null,
    cgroup: known ? u64At(buf, at + owner.cgroup) : null,
  };
}

export function decodeSnapshot(buf: Buffer): SocketRow[] {
  const rows: SocketRow[] = [];
  const u64 = (at: number) => u64At(buf, at);
  for (let at = 0; at + FlowRecord.SIZE <= buf.length; at += FlowRecord.SIZE) {
    rows.push({
      ...identAndOwner(buf, at, FlowRecord.sock, FlowRecord.owner),
      state: buf[at + FlowRecord.state],
      uid: buf.readUInt32LE(at + FlowRecord.uid),
      ino: buf.readUInt32LE(at + FlowRecord.ino),
      tx_bytes: u64(at + FlowRecord.tx_bytes),
      rx_bytes: u64(at + FlowRecord.rx_bytes),
      rx_queue: buf.readUInt32LE(at + FlowRecord.rx_queue),
      tx_queue: buf.readUInt32LE(at + FlowRecord.tx_queue),
      srtt_us: buf.readUInt32LE(at + FlowRecord.srtt_us),
      retrans: buf.readUInt32LE(at + FlowRecord.retrans),
      segs_out: buf.readUInt32LE(at + FlowRecord.segs_out),
      segs_in: buf.readUInt32LE(at + FlowRecord.segs_in),
    });
  }
  return rows;
}

export function decodeUdpSnapshot(buf: Buffer): UdpRow[] {
  const rows: UdpRow[] = [];
  for (let at = 0; at + UdpFlowRecord.SIZE <= buf.length; at += UdpFlowRecord.SIZE) {
    rows.push({
      ...identAndOwner(buf, at, UdpFlowRecord.sock, UdpFlowRecord.owner),
      state: buf[at + UdpFlowRecord.state],
      uid: buf.readUInt32LE(at + UdpFlowRecord.uid),
      ino: buf.readUInt32LE(at + UdpFlowRecord.ino),
      tx_bytes: u64At(buf, at + UdpFlowRecord.tx_bytes),
      rx_bytes: u64At(buf, at + UdpFlowRecord.rx_bytes),
      tx_datagrams: u64At(buf, at + UdpFlowRecord.tx_datagrams),
      rx_datagrams: u64At(buf, at + UdpFlowRecord.rx_datagrams),
      rx_queue: buf.readUInt32LE(at + UdpFlowRecord.rx_queue),
      tx_queue: buf.readUInt32LE(at + UdpFlowRecord.tx_queue),
      drops: buf.readUInt32LE(at + UdpFlowRecord.drops),
      born_ns: u64At(buf, at + UdpFlowRecord.born_ns),
    });
  }
  return rows;
}

/** The udp_peers map as the addon reads it: (nt_udp_peer, nt_udp_peer_bytes) pairs. */
export function decodePeers(buf: Buffer): PeerRow[] {
  const rows: PeerRow[] = [];
  const step = UdpPeer.SIZE + UdpPeerBytes.SIZE;
  for (let at = 0; at + step <= buf.length; at += step) {
    const family = buf[at + UdpPeer.family] === 6 ? 6 : 4;
    const v = at + UdpPeer.SIZE;
    rows.push({
      sock: u64At(buf, at + UdpPeer.cookie),
      family,
      daddr: formatAddr(buf, at + UdpPeer.addr, family),
      dport: buf.readUInt16LE(at + UdpPeer.port),
      tx_bytes: u64At(buf, v + UdpPeerBytes.tx_bytes),
      rx_bytes: u64At(buf, v + UdpPeerBytes.rx_bytes),
      tx_datagrams: u64At(buf, v + UdpPeerBytes.tx_datagrams),
      rx_datagrams: u64At(buf, v + UdpPeerBytes.rx_datagrams),
    });
  }
  return rows;
}
