/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The TCP socket table: what nettrace keeps per socket between hooks. The
 * state unit fills it, the accept unit adds the accepting process, the
 * snapshot reads owners and byte bases from it. Its map is defined in
 * shared.bpf.c.
 */
#ifndef NETTRACE_TCP_SOCKS_BPF_H
#define NETTRACE_TCP_SOCKS_BPF_H

#define SOCK_DONE 1 /* enum sock_flags: set by tcp_fin() when the peer's FIN arrives */

struct sock_info {
	__u64 born_ns; /* first transition seen */
	__u64 last_ns; /* last transition */
	__u64 mark_ns; /* SYN_SENT (active) or ESTABLISHED (passive) */
	/* bytes_acked/bytes_received at ESTABLISHED: what the handshake counted */
	__u64 acked_base;
	__u64 rcvd_base;
	/* as of LISTEN or ESTABLISHED: the accept tracepoints read it, and CLOSE
	 * needs its port back after the kernel released it */
	struct nt_sock sock;
	struct nt_owner owner;
	/*
	 * When a passive child left LISTEN for SYN_RECV, while its record waits
	 * for the next transition: until inet_csk_clone_lock() returns, the
	 * child's cookie is not final (6.1 copies the request's cookie over it
	 * after the transition), so the record goes out once it is.
	 */
	__u64 syn_recv_ns;
};

/*
 * Keyed by the socket's address so that tracepoint programs, which only see
 * plain pointers, can find it too. Deleted when the socket reaches CLOSE; LRU
 * bounds what sockets that vanish unseen could leave behind.
 */
NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_info);
} socks SEC(".maps");

/*
 * bytes_acked and bytes_received count sequence space, not data: the SYN (on
 * the active side only) and each FIN take one. The handshake's share is
 * subtracted as measured at ESTABLISHED; a FIN is subtracted when it was
 * acknowledged (ours) or received (theirs).
 */
static __always_inline __u64 data_acked(const struct tcp_sock *tp, const struct sock_info *si,
					int old)
{
	__u64 acked = tp->bytes_acked - (si ? si->acked_base : 0);
	int fin_acked = old == TCP_FIN_WAIT2 ||
			((old == TCP_LAST_ACK || old == TCP_CLOSING) && tp->snd_una == tp->write_seq);

	return acked > 0 && fin_acked ? acked - 1 : acked;
}

static __always_inline __u64 data_received(const struct tcp_sock *tp, const struct sock_info *si,
					   const struct sock *sk)
{
	__u64 rcvd = tp->bytes_received - (si ? si->rcvd_base : 0);

	return rcvd > 0 && (sk->__sk_common.skc_flags & (1UL << SOCK_DONE)) ? rcvd - 1 : rcvd;
}

#endif /* NETTRACE_TCP_SOCKS_BPF_H */
