/** Decodes the iter/tcp snapshot: one struct nt_flow per socket, back to back. */
import { formatAddr } from '../decode';
import { COMM_LEN, Flow } from '../layout';

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

const TWO32 = 4294967296;

export function decodeSnapshot(buf: Buffer): SocketRow[] {
  const rows: SocketRow[] = [];
  const u64 = (at: number) => buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO32;
  for (let at = 0; at + Flow.SIZE <= buf.length; at += Flow.SIZE) {
    const family = buf[at + Flow.sock.family] === 6 ? 6 : 4;
    const known = buf.readUInt32LE(at + Flow.owner.known) !== 0;
    const comm = at + Flow.owner.comm;
    const end = buf.indexOf(0, comm);
    rows.push({
      sock: u64(at + Flow.sock.cookie),
      netns: buf.readUInt32LE(at + Flow.sock.netns),
      family,
      saddr: formatAddr(buf, at + Flow.sock.saddr, family),
      sport: buf.readUInt16LE(at + Flow.sock.sport),
      daddr: formatAddr(buf, at + Flow.sock.daddr, family),
      dport: buf.readUInt16LE(at + Flow.sock.dport),
      state: buf[at + Flow.state],
      pid: known ? buf.readUInt32LE(at + Flow.owner.pid) : null,
      comm: known ? buf.toString('latin1', comm, end < 0 || end > comm + COMM_LEN ? comm + COMM_LEN : end) : null,
      cgroup: known ? u64(at + Flow.owner.cgroup) : null,
      uid: buf.readUInt32LE(at + Flow.uid),
      ino: buf.readUInt32LE(at + Flow.ino),
      tx_bytes: u64(at + Flow.tx_bytes),
      rx_bytes: u64(at + Flow.rx_bytes),
      rx_queue: buf.readUInt32LE(at + Flow.rx_queue),
      tx_queue: buf.readUInt32LE(at + Flow.tx_queue),
      srtt_us: buf.readUInt32LE(at + Flow.srtt_us),
      retrans: buf.readUInt32LE(at + Flow.retrans),
      segs_out: buf.readUInt32LE(at + Flow.segs_out),
      segs_in: buf.readUInt32LE(at + Flow.segs_in),
    });
  }
  return rows;
}
