/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The UDP socket storage: what nettrace keeps per UDP socket, in storage the
 * kernel frees with the socket. The UDP unit fills it, the DNS unit takes
 * owners from it, the snapshot reads its counters. Its map is defined in
 * shared.bpf.c.
 */
#ifndef NETTRACE_UDP_STORE_BPF_H
#define NETTRACE_UDP_STORE_BPF_H

/* The remote endpoint a sendto/recvfrom names, until its length tracepoint fires. */
struct udp_pending {
	__u32 tid;  /* 0: none */
	__u16 port;
	__u8 family;
	__u8 _pad;
	__u8 addr[16];
};

struct udp_info {
	__u64 born_ns;     /* 0: created before tracing */
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u64 tx_datagrams;
	__u64 rx_datagrams;
	struct nt_owner owner;
	/* one each way: a sender and a receiver thread often share a socket */
	struct udp_pending tx_pend;
	struct udp_pending rx_pend;
};

NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct udp_info);
} udp_store SEC(".maps");

/* sk_drops plus, since 6.18, the per-NUMA-node counters UDP sockets have. */
static __always_inline __u32 read_drops(const struct sock *sk)
{
	__u32 n = sk->sk_drops.counter;

	if (bpf_core_field_exists(sk->sk_drop_counters)) {
		struct numa_drop_counters *more = BPF_CORE_READ(sk, sk_drop_counters);

		if (more)
			n += BPF_CORE_READ(more, drops0.counter) + BPF_CORE_READ(more, drops1.counter);
	}
	return n;
}

#endif /* NETTRACE_UDP_STORE_BPF_H */
