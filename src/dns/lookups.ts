/**
 * Pairs the DNS queries each socket sent with the responses it received, and
 * makes one DnsEvent per query: answered (with its latency), or timed out
 * when no response came within `timeoutMs`. Fed nt_dns records in order;
 * everything it could not use is counted in `stats`.
 */
import { RecordCursor } from '../record-cursor';
import { baseOf, Clock, DnsEvent, EventBase } from '../events';
import { DnsDir } from '../layout';
import { DnsMessage, parsePayload } from './message';

export interface DnsLookupOptions {
  /** A query with no response after this long is reported as a timeout (default 5000 ms, glibc's). */
  timeoutMs?: number;
  /** Queries awaiting a response at once; past it the oldest are reported as timeouts early (default 65536). */
  maxPending?: number;
}

export interface DnsStats {
  /** DNS records folded in. */
  records: number;
  queries: number;
  answered: number;
  timeouts: number;
  /** The same query sent again (same socket, id and question) while unanswered. */
  retries: number;
  /** Payloads dns-packet could not read. */
  malformed: number;
  /** Payloads the kernel copied only in part (NT_DNS_MAX), that could not be read whole. */
  cut: number;
  /** TCP segments holding part of a message (it spanned segments). */
  partial: number;
  /** Responses to no query seen (sent before tracing began, or already timed out). */
  unmatched: number;
  /** Queries reported as timeouts before their time because maxPending were waiting. */
  evicted: number;
}

interface Pending {
  base: EventBase;
  proto: 'udp' | 'tcp';
  msg: DnsMessage;
  sentNs: number;
}

const TCP = 6;

export class DnsLookups {
  readonly stats: DnsStats = {
    records: 0, queries: 0, answered: 0, timeouts: 0, retries: 0, malformed: 0, cut: 0, partial: 0, unmatched: 0, evicted: 0,
  };
  private readonly timeoutNs: number;
  private readonly maxPending: number;
  /** In the order sent, so the oldest leave first. */
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly emit: (e: DnsEvent) => void, options: DnsLookupOptions = {}) {
    this.timeoutNs = (options.timeoutMs ?? 5000) * 1e6;
    this.maxPending = options.maxPending ?? 65536;
  }

  /** Folds in the DNS record under the cursor. */
  add(c: RecordCursor, clock: Clock): void {
    this.stats.records++;
    const { messages, fault } = parsePayload(c.dnsPayload(), c.dnsLen, c.dnsProto);
    if (fault) this.stats[fault]++;
    const sent = c.dnsDir === DnsDir.Sent;
    for (const msg of messages) {
      if (sent && !msg.response) this.query(c, clock, msg);
      else if (!sent && msg.response) this.response(c, msg);
      else this.stats.unmatched++; // a query received, a response sent: this socket serves DNS
    }
  }

  /** Reports queries unanswered for timeoutMs as of `nowNs` (CLOCK_MONOTONIC); call it now and then. */
  expire(nowNs: number): void {
    for (const [key, p] of this.pending) {
      if (nowNs - p.sentNs < this.timeoutNs) break;
      this.pending.delete(key);
      this.timeout(p);
    }
  }

  /** Every query still waiting, reported as a timeout: when tracing ends. */
  flush(): void {
    for (const p of this.pending.values()) this.timeout(p);
    this.pending.clear();
  }

  get waiting(): number {
    return this.pending.size;
  }

  private query(c: RecordCursor, clock: Clock, msg: DnsMessage): void {
    const key = keyOf(c.cookie, msg);
    if (this.pending.has(key)) {
      this.stats.retries++;
      return;
    }
    this.stats.queries++;
    if (this.pending.size >= this.maxPending) {
      const [oldest, p] = this.pending.entries().next().value as [string, Pending];
      this.pending.delete(oldest);
      this.stats.evicted++;
      this.timeout(p);
    }
    this.pending.set(key, { base: baseOf(c, clock), proto: c.dnsProto === TCP ? 'tcp' : 'udp', msg, sentNs: c.tsNs });
  }

  private response(c: RecordCursor, msg: DnsMessage): void {
    const key = keyOf(c.cookie, msg);
    const p = this.pending.get(key);
    if (!p) {
      this.stats.unmatched++;
      return;
    }
    this.pending.delete(key);
    this.stats.answered++;
    const base = c.hasOwner || p.base.pid === null ? { ...p.base, ...ownerOf(c) } : p.base;
    this.emit(lookupEvent(base, p, msg, Math.round((c.tsNs - p.sentNs) / 1000)));
  }

  private timeout(p: Pending): void {
    this.stats.timeouts++;
    this.emit(lookupEvent(p.base, p, null, null));
  }
}

/** A response answers the query its socket sent with the same id and question (RFC 5452). */
function keyOf(cookie: number, m: DnsMessage): string {
  return `${cookie}/${m.id}/${m.qtype}/${m.name.toLowerCase()}`;
}

function ownerOf(c: RecordCursor): Partial<EventBase> {
  return c.hasOwner ? { pid: c.pid, tid: c.tid, uid: c.uid, comm: c.comm, cgroup: c.cgroup } : {};
}

function lookupEvent(base: EventBase, p: Pending, answer: DnsMessage | null, latencyUs: number | null): DnsEvent {
  const answers = answer?.answers ?? [];
  return {
    type: 'dns',
    ...base,
    proto: p.proto,
    id: p.msg.id,
    name: p.msg.name,
    qtype: p.msg.qtype,
    rcode: answer ? answer.rcode : null,
    answers,
    addresses: answers.filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => a.data),
    cnames: answers.filter((a) => a.type === 'CNAME').map((a) => a.data),
    latency_us: latencyUs,
    timeout: answer === null,
    truncated: answer?.truncated ?? false,
  };
}
