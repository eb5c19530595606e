/**
 * The DNS messages of one nt_dns record, parsed by dns-packet. Over UDP a
 * record holds one message; over TCP a segment holds zero or more whole
 * messages, each behind its 2-byte length (a message split across segments
 * is counted, not reassembled: DNS over TCP clients write each in one go).
 */
import { decode, type Answer, type Packet } from 'dns-packet';

export interface DnsRecordData {
  /** Answer data as text: an address, a name (CNAME, PTR, NS), or the record's JSON. */
  data: string;
  name: string;
  type: string;
  ttl: number;
}

export interface DnsMessage {
  id: number;
  /** true for a response. */
  response: boolean;
  rcode: string;
  /** The (first) question; empty if it had none. */
  name: string;
  qtype: string;
  answers: DnsRecordData[];
  /** TC: the server cut the answer (UDP); the client then asks again over TCP. */
  truncated: boolean;
}

/** Why a payload yielded no message, counted by the caller. */
export type DnsFault = 'malformed' | 'cut' | 'partial';

export interface Parsed {
  messages: DnsMessage[];
  fault: DnsFault | null;
}

const TCP = 6;

/**
 * `payload` is what the kernel copied of a payload `wireLen` bytes long.
 * Never throws: what dns-packet cannot read is a fault.
 */
export function parsePayload(payload: Buffer, wireLen: number, proto: number): Parsed {
  const cut = wireLen > payload.length;
  if (proto !== TCP) {
    const m = decodeOne(payload);
    return m ? { messages: [m], fault: null } : { messages: [], fault: cut ? 'cut' : 'malformed' };
  }
  const messages: DnsMessage[] = [];
  let at = 0;
  while (at + 2 <= payload.length) {
    const len = payload.readUInt16BE(at);
    if (at + 2 + len > payload.length) return { messages, fault: cut || at + 2 + len <= wireLen ? 'cut' : 'partial' };
    const m = decodeOne(payload.subarray(at + 2, at + 2 + len));
    if (!m) return { messages, fault: 'malformed' };
    messages.push(m);
    at += 2 + len;
  }
  return { messages, fault: at === payload.length && messages.length > 0 ? null : 'partial' };
}

function decodeOne(buf: Buffer): DnsMessage | null {
  let p: Packet;
  try {
    p = decode(buf);
  } catch {
    return null;
  }
  const q = p.questions?.[0];
  const flags = p.flags ?? 0;
  return {
    id: p.id ?? 0,
    response: p.type === 'response',
    rcode: (p as { rcode?: string }).rcode ?? 'NOERROR',
    name: q?.name ?? '',
    qtype: q?.type ?? '',
    answers: (p.answers ?? []).map(answerData),
    truncated: (flags & 0x200) !== 0,
  };
}

function answerData(a: Answer): DnsRecordData {
  const d = (a as { data?: unknown }).data;
  const data = typeof d === 'string' ? d : Buffer.isBuffer(d) ? d.toString('hex') : JSON.stringify(d);
  return { name: a.name, type: a.type, ttl: (a as { ttl?: number }).ttl ?? 0, data };
}
