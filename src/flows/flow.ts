/**
 * A flow: one socket as the flow table shows it, TCP or UDP, with what
 * enrichers hang on it (route, translation, container, steering, DNS name).
 */
import { TcpState } from '../tcp';
import { PeerRow, SocketIdent, SocketOwner } from './snapshot';
import { FlowSteering } from './flow-steering';
import { Container } from './cgroup-names';
import { Nat } from './nat';

export type Proto = 'tcp' | 'udp';

/** A remote endpoint of an unconnected UDP socket, with what went each way. */
export interface Peer extends Omit<PeerRow, 'sock'> {
  tx_rate: number;
  rx_rate: number;
}

/** Remote endpoints kept per unconnected UDP socket: those with the most bytes. */
export const PEERS_SHOWN = 8;

export interface Flow extends SocketIdent, SocketOwner {
  proto: Proto;
  /** TCP's state; a UDP socket is ESTABLISHED when connected, else CLOSE (ss's UNCONN). */
  state: TcpState;
  /** Data bytes sent (acknowledged) and received so far. */
  tx_bytes: number;
  rx_bytes: number;
  /** Bytes per second over the last interval. */
  tx_rate: number;
  rx_rate: number;
  srtt_us: number | null;
  retrans: number;
  /** Recv-Q and Send-Q as ss shows them; for a listener, pending accepts and the backlog. */
  rx_queue: number;
  tx_queue: number;
  /** Wall-clock ms: when nettrace saw the socket open (null if it predates tracing), first saw it, saw it close. */
  opened: number | null;
  first_seen: number;
  closed: number | null;
  /** The route it takes, as `ip route get DADDR` in its namespace says (null until known, or with no route). */
  ifname: string | null;
  gateway: string | null;
  route_src: string | null;
  route_table: string | null;
  /** The tuple the far end sees when netfilter translates the flow (conntrack), null when it does not (or not yet known). */
  nat: Nat | null;
  /** Who owns the socket's cgroup: container, pod, systemd unit (null until resolved, or with no cgroup known). */
  container: Container | null;
  /** Receive steering since tracing began; null unless the tracer runs the steering hooks. */
  steering: FlowSteering | null;
  /** The DNS name the remote address was looked up by (src/dns/names), null when no lookup seen answered it. */
  rname: string | null;
  /** UDP only: datagrams each way and the kernel's drop count for the socket. */
  tx_datagrams?: number;
  rx_datagrams?: number;
  drops?: number;
  /** UDP, unconnected only: the remote endpoints with the most bytes, most first (at most PEERS_SHOWN). */
  peers?: Peer[];
}

/** A flow nothing is known of yet but which socket it is, first seen at `now`. */
export function newFlow(ident: SocketIdent, now: number, proto: Proto = 'tcp'): Flow {
  // every field written out, in one order, so all flows of a protocol share one shape
  const f: Flow = {
    sock: ident.sock,
    netns: ident.netns,
    family: ident.family,
    saddr: ident.saddr,
    sport: ident.sport,
    daddr: ident.daddr,
    dport: ident.dport,
    proto,
    state: 'UNKNOWN',
    pid: null,
    comm: null,
    cgroup: null,
    tx_bytes: 0,
    rx_bytes: 0,
    tx_rate: 0,
    rx_rate: 0,
    srtt_us: null,
    retrans: 0,
    rx_queue: 0,
    tx_queue: 0,
    opened: null,
    first_seen: now,
    closed: null,
    rname: null,
    ifname: null,
    gateway: null,
    route_src: null,
    route_table: null,
    nat: null,
    container: null,
    steering: null,
  };
  if (proto === 'udp') Object.assign(f, { tx_datagrams: 0, rx_datagrams: 0, drops: 0 });
  return f;
}
