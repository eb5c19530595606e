// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The snapshot: every TCP and UDP socket on demand, as the iter/tcp and
 * iter/udp iterators walk them, written back to back as struct nt_flow and
 * struct nt_udp_flow for the flow table. What nettrace learnt of a socket
 * while tracing (owner, byte bases, UDP counters) is joined from the TCP
 * socket table and the UDP socket storage.
 */
#include "nettrace.bpf.h"
#include "tcp_socks.bpf.h"
#include "udp_store.bpf.h"

/*
 * Every TCP socket on demand, for the flow table: sockets that predate
 * nettrace, live byte counters, queues and RTT, all without per-packet hooks.
 */
SEC("iter/tcp")
int dump_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct sock_info *si;
	struct nt_flow f = {};
	__u64 key;

	if (!skc)
		return 0;
	key = (__u64)skc;
	read_sock(&f.sock, skc);
	f.state = skc->skc_state;
	if (f.state == TCP_TIME_WAIT) {
		/* an orphan closed in FIN_WAIT2 is a minisocket too: ss and /proc/net/tcp name its substate */
		struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);

		if (tw)
			f.state = tw->tw_sk.tw_substate;
	}
	f.uid = ctx->uid;
	si = bpf_map_lookup_elem(&socks, &key);
	if (si)
		__builtin_memcpy(&f.owner, &si->owner, sizeof(f.owner));
	if (!f.sock.sport && si)
		f.sock.sport = si->sock.sport;
	/* TIME_WAIT and request sockets are not full sockets: addresses only */
	tp = bpf_skc_to_tcp_sock(skc);
	if (tp) {
		const struct sock *sk = (const struct sock *)tp;

		f.ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
		f.tx_bytes = data_acked(tp, si, f.state);
		f.rx_bytes = data_received(tp, si, sk);
		f.srtt_us = tp->srtt_us >> 3;
		f.retrans = tp->total_retrans;
		f.segs_out = tp->segs_out;
		f.segs_in = tp->segs_in;
		if (f.state == TCP_LISTEN) {
			f.rx_queue = sk->sk_ack_backlog;
			f.tx_queue = sk->sk_max_ack_backlog;
		} else {
			__s32 unread = tp->rcv_nxt - tp->copied_seq;

			f.rx_queue = unread > 0 ? unread : 0;
			f.tx_queue = tp->write_seq - tp->snd_una;
		}
	}
	bpf_seq_write(ctx->meta->seq, &f, sizeof(f));
	return 0;
}

/* Every UDP socket of this network namespace now, for the flow table. */
SEC("iter/udp")
int dump_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;
	struct nt_udp_flow f = {};
	struct udp_info *ui;
	struct sock *sk;

	if (!udp)
		return 0;
	sk = (struct sock *)udp;
	read_sock(&f.sock, &sk->__sk_common);
	f.state = sk->__sk_common.skc_state;
	f.uid = ctx->uid;
	f.ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	f.rx_queue = sk->sk_backlog.rmem_alloc.counter;
	f.tx_queue = sk->sk_wmem_alloc.refs.counter - 1; /* as sk_wmem_alloc_get() */
	f.drops = read_drops(sk);
	ui = has_tracing_sk_storage() ? bpf_sk_storage_get(&udp_store, sk, 0, 0) : 0;
	if (ui) {
		__builtin_memcpy(&f.owner, &ui->owner, sizeof(f.owner));
		f.tx_bytes = ui->tx_bytes;
		f.rx_bytes = ui->rx_bytes;
		f.tx_datagrams = ui->tx_datagrams;
		f.rx_datagrams = ui->rx_datagrams;
		f.born_ns = ui->born_ns;
	}
	bpf_seq_write(ctx->meta->seq, &f, sizeof(f));
	return 0;
}
