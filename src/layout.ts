/**
 * Byte offsets of the records in bpf/nettrace.h, which is the one definition.
 * test/layout.test.ts compiles that header and fails if anything here moved.
 */
export const Kind = {
  State: 1,
  Connect: 2,
  Accept: 3,
  Close: 4,
  Udp: 5,
  Dns: 6,
} as const;
export type KindCode = (typeof Kind)[keyof typeof Kind];

export const COMM_LEN = 16;

/** struct nt_sock and struct nt_owner, relative to where they start. */
const SOCK = { cookie: 0, netns: 8, sport: 12, dport: 14, family: 16, saddr: 24, daddr: 40 } as const;
const OWNER = { cgroup: 0, pid: 8, tid: 12, uid: 16, known: 20, comm: 24 } as const;
type Shifted<T> = { readonly [K in keyof T]: number };
function at<T extends Record<string, number>>(fields: T, base: number): Shifted<T> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v + base])) as Shifted<T>;
}

/** struct nt_head, which starts every record. */
export const Head = {
  kind: 0,
  size: 2,
  cpu: 4,
  ts: 8,
  sock: at(SOCK, 16),
  owner: at(OWNER, 72),
  SIZE: 112,
} as const;

export const State = { in_old_ns: 112, old_state: 120, new_state: 121, SIZE: 128 } as const;
export const Connect = { latency_ns: 112, err: 120, SIZE: 128 } as const;
export const Accept = { queued_ns: 112, SIZE: 120 } as const;
export const Close = {
  lifetime_ns: 112,
  tx_bytes: 120,
  rx_bytes: 128,
  segs_out: 136,
  segs_in: 140,
  retrans: 144,
  srtt_us: 148,
  old_state: 152,
  SIZE: 160,
} as const;

/** struct nt_udp: a UDP socket opened (event 1) or released (event 2). */
export const Udp = {
  lifetime_ns: 112,
  tx_bytes: 120,
  rx_bytes: 128,
  tx_datagrams: 136,
  rx_datagrams: 144,
  drops: 152,
  event: 156,
  SIZE: 160,
} as const;
export const UdpEvent = { Open: 1, Close: 2 } as const;

/** struct nt_dns: a DNS message sent or received; `captured` payload bytes follow at SIZE. */
export const Dns = { len: 112, captured: 116, dir: 118, proto: 119, SIZE: 120 } as const;
export const DnsDir = { Sent: 1, Received: 2 } as const;
export const DNS_MAX = 512;

/** struct nt_flow: one socket of the iter/tcp snapshot. */
export const Flow = {
  sock: at(SOCK, 0),
  owner: at(OWNER, 56),
  tx_bytes: 96,
  rx_bytes: 104,
  uid: 112,
  ino: 116,
  rx_queue: 120,
  tx_queue: 124,
  srtt_us: 128,
  retrans: 132,
  segs_out: 136,
  segs_in: 140,
  state: 144,
  SIZE: 152,
} as const;

/** struct nt_udp_flow: one socket of the iter/udp snapshot. */
export const UdpFlow = {
  sock: at(SOCK, 0),
  owner: at(OWNER, 56),
  tx_bytes: 96,
  rx_bytes: 104,
  tx_datagrams: 112,
  rx_datagrams: 120,
  born_ns: 128,
  uid: 136,
  ino: 140,
  rx_queue: 144,
  tx_queue: 148,
  drops: 152,
  state: 156,
  SIZE: 160,
} as const;

/** struct nt_udp_peer then struct nt_udp_peer_bytes: one entry of the udp_peers map. */
export const UdpPeer = { cookie: 0, addr: 8, port: 24, family: 26, SIZE: 32 } as const;
export const UdpPeerBytes = { tx_bytes: 0, rx_bytes: 8, tx_datagrams: 16, rx_datagrams: 24, SIZE: 32 } as const;
