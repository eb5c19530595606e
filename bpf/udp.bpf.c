/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * UDP sockets: lifetimes, owners, exact datagram and byte counts, the kernel's
 * drop count, and per remote endpoint traffic of unconnected sockets.
 *
 * UDP has no lifecycle tracepoint. The cgroup sock_create and sock_release
 * programs, attached to the cgroup v2 root, run for every inet socket of every
 * process (whatever its network namespace), in the process's own context: the
 * owner and the lifetime are exact. Datagrams are counted where sendmsg and
 * recvmsg return to their caller (sock:sock_{send,recv}_length), in a
 * per-socket storage the kernel frees with the socket: nothing goes into the
 * ring per datagram. The storage is shared with the DNS and snapshot units
 * (udp_store.bpf.h).
 */
#include "nettrace.bpf.h"
#include "udp_store.bpf.h"

#define SOCK_DGRAM 2
#define MSG_PEEK 2
#define MSG_ERRQUEUE 0x2000

/* 6.2+; weak so that older kernels still load the object (the UDP hook, 6.3+, is then left off) */
extern void *bpf_cast_to_kern_ctx(void *ctx) __ksym __weak;

/* A cgroup sock program's context is the socket: as the kernel's struct sock, to read what bpf_sock does not show. */
static __always_inline struct sock *sock_of(struct bpf_sock *ctx)
{
	return bpf_cast_to_kern_ctx(ctx);
}

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct nt_udp_peer);
	__type(value, struct nt_udp_peer_bytes);
} udp_peers SEC(".maps");

static __always_inline int is_udp(const struct sock *sk)
{
	return sk->sk_protocol == IPPROTO_UDP && sk->sk_type == SOCK_DGRAM;
}

static __always_inline void emit_udp(struct bpf_sock *ctx, const struct sock *sk, const struct udp_info *ui,
				     __u8 event)
{
	struct nt_sock tuple;
	struct nt_udp *r;
	__u64 now;

	if (!WANTS(NT_UDP))
		return;
	now = bpf_ktime_get_ns();
	tuple.cookie = bpf_get_socket_cookie(ctx);
	read_tuple(&tuple, &sk->__sk_common);
	if (!wanted(&tuple, ui ? &ui->owner : 0))
		return;
	r = reserve(sizeof(*r), NT_UDP);
	if (!r)
		return;
	head(&r->h, NT_UDP, sizeof(*r), now);
	__builtin_memcpy(&r->h.sock, &tuple, sizeof(tuple));
	if (ui) {
		__builtin_memcpy(&r->h.owner, &ui->owner, sizeof(r->h.owner));
		r->lifetime_ns = event == NT_UDP_CLOSE && ui->born_ns ? now - ui->born_ns : 0;
		r->tx_bytes = ui->tx_bytes;
		r->rx_bytes = ui->rx_bytes;
		r->tx_datagrams = ui->tx_datagrams;
		r->rx_datagrams = ui->rx_datagrams;
	} else {
		__builtin_memset(&r->h.owner, 0, sizeof(r->h.owner));
		r->lifetime_ns = 0;
		r->tx_bytes = 0;
		r->rx_bytes = 0;
		r->tx_datagrams = 0;
		r->rx_datagrams = 0;
	}
	r->drops = event == NT_UDP_CLOSE ? read_drops(sk) : 0;
	r->event = event;
	__builtin_memset(r->_pad, 0, sizeof(r->_pad));
	submit(r);
}

/* Return 1: a cgroup sock program that returns 0 refuses the socket. */
SEC("cgroup/sock_create")
int udp_create(struct bpf_sock *ctx)
{
	struct udp_info *ui;

	if (ctx->protocol != IPPROTO_UDP || ctx->type != SOCK_DGRAM)
		return 1;
	ui = bpf_sk_storage_get(&udp_store, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!ui)
		return 1; /* out of memory: the socket is counted as if it predated tracing */
	ui->born_ns = bpf_ktime_get_ns();
	capture_owner(&ui->owner);
	emit_udp(ctx, sock_of(ctx), ui, NT_UDP_OPEN);
	return 1;
}

/* Runs from the last close(2), or the exit of the last process holding it. */
SEC("cgroup/sock_release")
int udp_release(struct bpf_sock *ctx)
{
	struct udp_info *ui;

	if (ctx->protocol != IPPROTO_UDP || ctx->type != SOCK_DGRAM)
		return 1;
	/* made here for a socket that predates tracing and was never used: the closer owns it */
	ui = bpf_sk_storage_get(&udp_store, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (ui && !ui->owner.known)
		capture_owner(&ui->owner);
	emit_udp(ctx, sock_of(ctx), ui, NT_UDP_CLOSE);
	return 1;
}

/* v6 is a constant: a sendmsg4/recvmsg4 program may not read user_ip6 */
static __always_inline void note_peer(struct bpf_sock_addr *ctx, int tx, int v6)
{
	struct bpf_sock *sk = ctx->sk;
	struct udp_pending *p;
	struct udp_info *ui;

	if (!sk || sk->state == TCP_ESTABLISHED)
		return; /* connected: the socket's own peer says it all */
	ui = bpf_sk_storage_get(&udp_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!ui)
		return;
	p = tx ? &ui->tx_pend : &ui->rx_pend;
	p->tid = (__u32)bpf_get_current_pid_tgid();
	p->port = bpf_ntohs((__u16)ctx->user_port);
	__builtin_memset(p->addr, 0, sizeof(p->addr));
	if (!v6) {
		p->family = 4;
		*(__u32 *)p->addr = ctx->user_ip4;
	} else {
		__u32 a[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

		if (is_v4_mapped(a)) {
			p->family = 4;
			*(__u32 *)p->addr = a[3];
		} else {
			p->family = 6;
			__builtin_memcpy(p->addr, a, 16);
		}
	}
}

SEC("cgroup/sendmsg4")
int udp_sendto4(struct bpf_sock_addr *ctx)
{
	note_peer(ctx, 1, 0);
	return 1;
}

SEC("cgroup/sendmsg6")
int udp_sendto6(struct bpf_sock_addr *ctx)
{
	note_peer(ctx, 1, 1);
	return 1;
}

SEC("cgroup/recvmsg4")
int udp_recvfrom4(struct bpf_sock_addr *ctx)
{
	note_peer(ctx, 0, 0);
	return 1;
}

SEC("cgroup/recvmsg6")
int udp_recvfrom6(struct bpf_sock_addr *ctx)
{
	note_peer(ctx, 0, 1);
	return 1;
}

static __always_inline void add_peer(struct sock *sk, struct udp_pending *p, int tx, __u64 bytes)
{
	struct nt_udp_peer key = {};
	struct nt_udp_peer_bytes *v;

	key.cookie = bpf_get_socket_cookie(sk);
	__builtin_memcpy(key.addr, p->addr, sizeof(key.addr));
	key.port = p->port;
	key.family = p->family;
	v = bpf_map_lookup_elem(&udp_peers, &key);
	if (!v) {
		struct nt_udp_peer_bytes zero = {};

		bpf_map_update_elem(&udp_peers, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&udp_peers, &key);
		if (!v)
			return;
	}
	if (tx) {
		__sync_fetch_and_add(&v->tx_bytes, bytes);
		__sync_fetch_and_add(&v->tx_datagrams, 1);
	} else {
		__sync_fetch_and_add(&v->rx_bytes, bytes);
		__sync_fetch_and_add(&v->rx_datagrams, 1);
	}
}

/*
 * One call is one datagram for UDP (corked sends with MSG_MORE excepted);
 * `ret` is its payload. Runs in the caller's process, so a socket created
 * before tracing gets the first process seen using it as its owner.
 */
static __always_inline void count_datagram(struct sock *sk, int ret, int tx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct udp_pending *p;
	struct udp_info *ui;

	/* a failed call (a non-blocking read finding nothing, mostly) needs no storage made */
	ui = bpf_sk_storage_get(&udp_store, sk, 0, ret < 0 ? 0 : BPF_SK_STORAGE_GET_F_CREATE);
	if (!ui)
		return;
	p = tx ? &ui->tx_pend : &ui->rx_pend;
	if (ret < 0) {
		if (p->tid == tid)
			p->tid = 0;
		return;
	}
	if (!ui->owner.known)
		capture_owner(&ui->owner);
	if (tx) {
		__sync_fetch_and_add(&ui->tx_bytes, ret);
		__sync_fetch_and_add(&ui->tx_datagrams, 1);
	} else {
		__sync_fetch_and_add(&ui->rx_bytes, ret);
		__sync_fetch_and_add(&ui->rx_datagrams, 1);
	}
	if (p->tid == tid) {
		add_peer(sk, p, tx, ret);
		p->tid = 0;
	}
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(udp_sent, struct sock *sk, int ret, int flags)
{
	if (is_udp(sk))
		count_datagram(sk, ret, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(udp_received, struct sock *sk, int ret, int flags)
{
	/* a peek leaves the datagram for the read that counts it */
	if (is_udp(sk) && !(flags & (MSG_PEEK | MSG_ERRQUEUE)))
		count_datagram(sk, ret, 0);
	return 0;
}
