/**
 * Walks a batch of raw records in place. One cursor is reused for a whole
 * batch and every getter reads straight from the buffer, so scanning,
 * filtering and counting allocate nothing per record; strings and event
 * objects are made only when asked for.
 */
import { Accept, Close, COMM_LEN, Connect, Dns, Head, Kind, KindCode, State, Udp } from './layout';

/*
 * The offsets the flow table reads from every record, as module constants: a
 * getter that reads `Head.sock.cookie` loads three properties first, which
 * makes it too big for V8 to inline at every use, and an accessor call per
 * field was half the cost of folding a record in.
 */
const KIND = Head.kind;
const SIZE = Head.size;
const TS = Head.ts;
const COOKIE = Head.sock.cookie;
const NETNS = Head.sock.netns;
const SPORT = Head.sock.sport;
const DPORT = Head.sock.dport;
const FAMILY = Head.sock.family;
const SADDR = Head.sock.saddr;
const DADDR = Head.sock.daddr;
const KNOWN = Head.owner.known;
const PID = Head.owner.pid;
const CGROUP = Head.owner.cgroup;
const IN_OLD_NS = State.in_old_ns;
const OLD_STATE = State.old_state;
const NEW_STATE = State.new_state;
const CLOSE_OLD_STATE = Close.old_state;
const TX_BYTES = Close.tx_bytes;
const RX_BYTES = Close.rx_bytes;
const SRTT_US = Close.srtt_us;
const RETRANS = Close.retrans;
const HEAD_SIZE = Head.SIZE;

const TWO32 = 4294967296;

export class RecordCursor {
  private buf: Buffer = Buffer.alloc(0);
  private view = new DataView(this.buf.buffer);
  private base = 0;
  /** Byte offset of the current record in the batch. */
  offset = 0;
  private nextOffset = 0;

  /** The batch being walked; the current record starts at `offset` in it. */
  get batch(): Buffer {
    return this.buf;
  }

  /** Records `next()` skips; applied before anything is decoded. */
  filter: ((c: RecordCursor) => boolean) | undefined;

  /** Points the cursor before the first record of `batch`. */
  reset(batch: Buffer): this {
    this.buf = batch;
    this.view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    this.base = 0;
    this.offset = 0;
    this.nextOffset = 0;
    return this;
  }

  /** Moves to the next record that passes the filter; false at the end of the batch. */
  next(): boolean {
    while (this.step()) if (!this.filter || this.filter(this)) return true;
    return false;
  }

  private step(): boolean {
    const at = this.nextOffset;
    if (at + HEAD_SIZE > this.buf.length) return false;
    const size = this.view.getUint16(at + SIZE, true);
    if (size < HEAD_SIZE || at + size > this.buf.length) {
      throw new Error(`corrupt record at byte ${at}: size ${size}`);
    }
    this.offset = this.base = at;
    this.nextOffset = at + size;
    return true;
  }

  private u8(off: number): number {
    return this.view.getUint8(this.base + off);
  }
  private u16(off: number): number {
    return this.view.getUint16(this.base + off, true);
  }
  private u32(off: number): number {
    return this.view.getUint32(this.base + off, true);
  }
  /** u64 as a number: exact below 2^53, which ns since boot, byte counts and cookies stay under. */
  private u64(off: number): number {
    return this.view.getUint32(this.base + off, true) + this.view.getUint32(this.base + off + 4, true) * TWO32;
  }

  get kind(): KindCode {
    return this.u16(KIND) as KindCode;
  }
  /** Which protocol the record is about: UDP records are their own kind; a DNS record says its own. */
  get proto(): 'tcp' | 'udp' {
    const kind = this.kind;
    if (kind === Kind.Dns) return this.dnsProto === 6 ? 'tcp' : 'udp';
    return kind === Kind.Udp ? 'udp' : 'tcp';
  }
  get size(): number {
    return this.u16(SIZE);
  }
  get cpu(): number {
    return this.u16(Head.cpu);
  }
  /** CLOCK_MONOTONIC nanoseconds. */
  get tsNs(): number {
    return this.u64(TS);
  }
  get cookie(): number {
    return this.u64(COOKIE);
  }
  get netns(): number {
    return this.u32(NETNS);
  }
  get sport(): number {
    return this.u16(SPORT);
  }
  get dport(): number {
    return this.u16(DPORT);
  }
  get family(): 4 | 6 {
    return this.u8(FAMILY) === 6 ? 6 : 4;
  }
  /** True when pid/tid/uid/comm/cgroup name the socket's owner. */
  get hasOwner(): boolean {
    return this.u32(KNOWN) !== 0;
  }
  get pid(): number {
    return this.u32(PID);
  }
  get tid(): number {
    return this.u32(Head.owner.tid);
  }
  get uid(): number {
    return this.u32(Head.owner.uid);
  }
  get cgroup(): number {
    return this.u64(CGROUP);
  }

  /** Compares comm with `name` (latin1 bytes) without decoding it. */
  commEquals(name: Buffer): boolean {
    const at = this.base + Head.owner.comm;
    if (name.length > COMM_LEN) return false;
    if (this.buf.compare(name, 0, name.length, at, at + name.length) !== 0) return false;
    return name.length === COMM_LEN || this.buf[at + name.length] === 0;
  }
  /** The comm's bytes `4i` to `4i + 3` as one number (i from 0 to 3): to tell names apart without decoding them. */
  commWord(i: number): number {
    return this.u32(Head.owner.comm + 4 * i);
  }
  get comm(): string {
    const at = this.base + Head.owner.comm;
    const end = this.buf.indexOf(0, at);
    return this.buf.toString('latin1', at, end < 0 || end > at + COMM_LEN ? at + COMM_LEN : end);
  }
  get saddr(): string {
    return this.family === 4 ? v4String(this.u32(SADDR)) : formatAddr(this.buf, this.base + SADDR, 6);
  }
  get daddr(): string {
    return this.family === 4 ? v4String(this.u32(DADDR)) : formatAddr(this.buf, this.base + DADDR, 6);
  }

  // state
  get inOldNs(): number {
    return this.u64(IN_OLD_NS);
  }
  get oldState(): number {
    return this.kind === 4 ? this.u8(CLOSE_OLD_STATE) : this.u8(OLD_STATE);
  }
  get newState(): number {
    return this.u8(NEW_STATE);
  }
  // connect
  get latencyNs(): number {
    return this.u64(Connect.latency_ns);
  }
  get err(): number {
    return this.view.getInt32(this.base + Connect.err, true);
  }
  // accept
  get queuedNs(): number {
    return this.u64(Accept.queued_ns);
  }
  // close and udp (struct nt_udp keeps nt_close's offsets for lifetime and bytes)
  get lifetimeNs(): number {
    return this.u64(Close.lifetime_ns);
  }
  get txBytes(): number {
    return this.u64(TX_BYTES);
  }
  get rxBytes(): number {
    return this.u64(RX_BYTES);
  }
  get segsOut(): number {
    return this.u32(Close.segs_out);
  }
  get segsIn(): number {
    return this.u32(Close.segs_in);
  }
  get retrans(): number {
    return this.u32(RETRANS);
  }
  get srttUs(): number {
    return this.u32(SRTT_US);
  }
  // udp
  /** UdpEvent.Open or UdpEvent.Close. */
  get udpEvent(): number {
    return this.u8(Udp.event);
  }
  get txDatagrams(): number {
    return this.u64(Udp.tx_datagrams);
  }
  get rxDatagrams(): number {
    return this.u64(Udp.rx_datagrams);
  }
  /** The kernel's drop count for the socket. */
  get drops(): number {
    return this.u32(Udp.drops);
  }
  // dns
  /** DnsDir.Sent or DnsDir.Received. */
  get dnsDir(): number {
    return this.u8(Dns.dir);
  }
  /** 17 (UDP) or 6 (TCP). */
  get dnsProto(): number {
    return this.u8(Dns.proto);
  }
  /** The payload's length in the packet; more than dnsPayload() holds when the kernel cut it. */
  get dnsLen(): number {
    return this.u32(Dns.len);
  }
  /** The copied payload, a view into the batch: copy what you keep. */
  dnsPayload(): Buffer {
    const at = this.base + Dns.SIZE;
    const n = Math.min(this.u16(Dns.captured), this.u16(SIZE) - Dns.SIZE);
    return this.buf.subarray(at, at + Math.max(0, n));
  }
}

/** IPv4 strings already made, by address: churn repeats a few addresses millions of times. */
const v4Strings = new Map<number, string>();

/** The dotted quad of an address read as a little-endian u32 (network order in memory). */
function v4String(key: number): string {
  let s = v4Strings.get(key);
  if (s === undefined) {
    if (v4Strings.size >= 4096) v4Strings.clear(); // bounded, whatever the traffic
    s = `${key & 255}.${(key >>> 8) & 255}.${(key >>> 16) & 255}.${key >>> 24}`;
    v4Strings.set(key, s);
  }
  return s;
}

function formatV4(buf: Buffer, at: number): string {
  return v4String(buf.readUInt32LE(at));
}

export function formatAddr(buf: Buffer, at: number, family: 4 | 6): string {
  if (family === 4) return formatV4(buf, at);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((buf[at + i] << 8) | buf[at + i + 1]).toString(16));
  // RFC 5952: the longest run of two or more zero groups becomes "::"
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
