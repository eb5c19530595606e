/**
 * Typed events: the object form of a record, for consumers that want objects
 * rather than the cursor. Keys are the JSON keys the CLI prints.
 */
import { RecordCursor } from './record-cursor';
import { Kind, UdpEvent as UdpEventCode } from './layout';
import { connectResult, stateName, TcpState } from './tcp';

export interface EventBase {
  /** Wall-clock time, milliseconds since the Unix epoch (microsecond fraction). */
  ts: number;
  cpu: number;
  /** Socket cookie: one per socket, never reused while the system runs. */
  sock: number;
  netns: number;
  /** Owner; null while none is known (e.g. a passive socket before accept). */
  pid: number | null;
  tid: number | null;
  uid: number | null;
  comm: string | null;
  cgroup: number | null;
  family: 4 | 6;
  /** Local side. */
  saddr: string;
  sport: number;
  /** Remote side. */
  daddr: string;
  dport: number;
  /** With the dns events on: the DNS name the remote address was looked up by, null if no lookup seen answered it. */
  rname?: string | null;
}

export interface StateEvent extends EventBase {
  type: 'state';
  old: TcpState;
  new: TcpState;
  /** Time spent in `old`; null when the socket was first seen here. */
  old_us: number | null;
}

export interface ConnectEvent extends EventBase {
  type: 'connect';
  /** ok, refused, timeout, or the errno name (e.g. EHOSTUNREACH). */
  result: string;
  /** SYN_SENT to ESTABLISHED or to failure. */
  latency_us: number;
}

export interface AcceptEvent extends EventBase {
  type: 'accept';
  /** Time the connection waited in the accept queue. */
  queued_us: number;
}

export interface CloseEvent extends EventBase {
  type: 'close';
  /** State the socket left for CLOSE. */
  old: TcpState;
  /** Lifetime from the first transition seen; null if the socket predates tracing. */
  duration_us: number | null;
  /** Bytes acknowledged by the peer (tcp_sock.bytes_acked). */
  tx_bytes: number;
  /** Bytes received (tcp_sock.bytes_received). */
  rx_bytes: number;
  segs_out: number;
  segs_in: number;
  retrans: number;
  srtt_us: number;
}

/**
 * A UDP socket created (`open`: the owner; no addresses yet, socket(2) has
 * none) or released (`close`: its addresses and totals).
 */
export interface UdpEvent extends EventBase {
  type: 'udp';
  event: 'open' | 'close';
  /** socket(2) to release; null on open, or if the socket predates tracing. */
  duration_us: number | null;
  /** Payload bytes and datagrams that sendmsg/recvmsg returned since tracing began. */
  tx_bytes: number;
  rx_bytes: number;
  tx_datagrams: number;
  rx_datagrams: number;
  /** Datagrams the kernel dropped on this socket (receive buffer full...), as /proc/net/udp counts them. */
  drops: number;
  /**
   * The close of an unconnected socket (from the library's iterator and the stream): the remote endpoints it
   * exchanged datagrams with, most bytes first (at most 8), and the rest summed (null when none).
   */
  peers?: { family: 4 | 6; daddr: string; dport: number; tx_bytes: number; rx_bytes: number; tx_datagrams: number; rx_datagrams: number }[];
  other_peers?: { endpoints: number; tx_bytes: number; rx_bytes: number; tx_datagrams: number; rx_datagrams: number } | null;
}

/** One answer record of a DNS response. */
export interface DnsAnswer {
  name: string;
  type: string;
  ttl: number;
  /** An address (A, AAAA), a name (CNAME, PTR, NS...), or the record's data as JSON. */
  data: string;
}

/**
 * One DNS query a socket sent to a port 53 and its response (src/dns/lookups):
 * `ts`, the owner and the tuple are the query's (saddr/sport the asker, daddr/dport
 * the server). A query with no response within the timeout has `timeout` set, `rcode` null.
 */
export interface DnsEvent extends EventBase {
  type: 'dns';
  proto: 'udp' | 'tcp';
  id: number;
  /** The question's name and type. */
  name: string;
  qtype: string;
  /** NOERROR, NXDOMAIN, SERVFAIL...; null on timeout. */
  rcode: string | null;
  answers: DnsAnswer[];
  /** The A and AAAA answers' addresses. */
  addresses: string[];
  /** The CNAME chain, in the order the answer gives it. */
  cnames: string[];
  /** Query sent to response received; null on timeout. */
  latency_us: number | null;
  timeout: boolean;
  /** The server set TC: the answer did not fit (the client asks again over TCP). */
  truncated: boolean;
}

export type NettraceEvent = StateEvent | ConnectEvent | AcceptEvent | CloseEvent | UdpEvent | DnsEvent;
export type EventType = NettraceEvent['type'];

/** Maps CLOCK_MONOTONIC ns to wall-clock ms, fixed once per process. */
export class Clock {
  private readonly offsetMs: number;
  constructor() {
    this.offsetMs = Date.now() - Number(process.hrtime.bigint()) / 1e6;
  }
  wallMs(monoNs: number): number {
    return Math.round((monoNs / 1e6 + this.offsetMs) * 1000) / 1000;
  }
}

const us = (ns: number): number => Math.round(ns / 1000);

/** What every event carries: the record's head. */
export function baseOf(c: RecordCursor, clock: Clock): EventBase {
  const owned = c.hasOwner;
  return {
    ts: clock.wallMs(c.tsNs),
    cpu: c.cpu,
    sock: c.cookie,
    netns: c.netns,
    pid: owned ? c.pid : null,
    tid: owned ? c.tid : null,
    uid: owned ? c.uid : null,
    comm: owned ? c.comm : null,
    cgroup: owned ? c.cgroup : null,
    family: c.family,
    saddr: c.saddr,
    sport: c.sport,
    daddr: c.daddr,
    dport: c.dport,
  };
}

export function toEvent(c: RecordCursor, clock: Clock): NettraceEvent {
  const base = baseOf(c, clock);
  switch (c.kind) {
    case Kind.State: {
      const inOld = c.inOldNs;
      return { type: 'state', ...base, old: stateName(c.oldState), new: stateName(c.newState), old_us: inOld ? us(inOld) : null };
    }
    case Kind.Connect:
      return { type: 'connect', ...base, result: connectResult(c.err), latency_us: us(c.latencyNs) };
    case Kind.Accept:
      return { type: 'accept', ...base, queued_us: us(c.queuedNs) };
    case Kind.Close: {
      const life = c.lifetimeNs;
      return {
        type: 'close',
        ...base,
        old: stateName(c.oldState),
        duration_us: life ? us(life) : null,
        tx_bytes: c.txBytes,
        rx_bytes: c.rxBytes,
        segs_out: c.segsOut,
        segs_in: c.segsIn,
        retrans: c.retrans,
        srtt_us: c.srttUs,
      };
    }
    case Kind.Udp: {
      const life = c.lifetimeNs;
      return {
        type: 'udp',
        ...base,
        event: c.udpEvent === UdpEventCode.Open ? 'open' : 'close',
        duration_us: life ? us(life) : null,
        tx_bytes: c.txBytes,
        rx_bytes: c.rxBytes,
        tx_datagrams: c.txDatagrams,
        rx_datagrams: c.rxDatagrams,
        drops: c.drops,
      };
    }
    case Kind.Dns:
      // a message, not an event: DnsLookups (src/dns) pairs queries with responses
      throw new Error(`DNS records become events through DnsLookups, not toEvent (byte ${c.offset})`);
    default:
      throw new Error(`unknown record kind ${c.kind} at byte ${c.offset}`);
  }
}
