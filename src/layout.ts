/**
 * Byte offsets of the records in bpf/nettrace.h, which is the one definition.
 * test/layout.test.ts compiles that header and fails if anything here moved.
 */
export const Kind = {
  State: 1,
  Connect: 2,
  Accept: 3,
  Close: 4,
} as const;
export type KindCode = (typeof Kind)[keyof typeof Kind];

export const COMM_LEN = 16;

/** struct nt_head, which starts every record. */
export const Head = {
  kind: 0,
  size: 2,
  cpu: 4,
  ts: 8,
  sock: {
    cookie: 16,
    netns: 24,
    sport: 28,
    dport: 30,
    family: 32,
    saddr: 40,
    daddr: 56,
  },
  owner: {
    cgroup: 72,
    pid: 80,
    tid: 84,
    uid: 88,
    known: 92,
    comm: 96,
  },
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
