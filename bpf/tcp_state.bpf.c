// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP lifecycle tracing: every state transition, connect outcomes and close
 * totals, all attributed to the socket's owning process (accepts are in
 * tcp_accept.bpf.c).
 *
 * Transitions mostly run in softirq, where `current` is whoever was
 * interrupted. So the owner is captured only where the kernel is known to run
 * in the owner's context (connect and listen move the socket out of CLOSE from
 * the syscall; accept returns in the accepting process) and kept per socket,
 * in the table of tcp_socks.bpf.h.
 */
#include "nettrace.bpf.h"
#include "tcp_socks.bpf.h"

#define ECONNABORTED 103

/*
 * Entries put into and deleted from socks, per CPU. The kernel does not count
 * LRU evictions; user space derives them: inserted - deleted - live entries.
 */
enum { SOCK_INSERTS, SOCK_DELETES };
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sock_counts SEC(".maps");

static __always_inline void count_sock(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&sock_counts, &which);

	if (n)
		*n += 1;
}

/* Transitions per (old, new) state, per CPU: `nettrace states` reads them instead of a record each. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NT_STATES * NT_STATES);
	__type(key, __u32);
	__type(value, __u64);
} state_counts SEC(".maps");

static __always_inline void copy_owner(struct nt_owner *dst, const struct sock_info *si)
{
	if (si)
		__builtin_memcpy(dst, &si->owner, sizeof(*dst));
	else
		__builtin_memset(dst, 0, sizeof(*dst));
}

static __always_inline void emit_state(const struct nt_head *h, int old, int new, __u64 last_ns)
{
	struct nt_state *r = reserve_as(h, NT_STATE, sizeof(*r));

	if (!r)
		return;
	r->in_old_ns = last_ns ? h->ts - last_ns : 0;
	r->old_state = old;
	r->new_state = new;
	__builtin_memset(r->_pad, 0, sizeof(r->_pad));
	submit(r);
}

static __always_inline void emit_connect(const struct nt_head *h, int new, const struct sock *sk,
					 const struct sock_info *si)
{
	struct nt_connect *r = reserve_as(h, NT_CONNECT, sizeof(*r));

	if (!r)
		return;
	r->latency_ns = si && si->mark_ns ? h->ts - si->mark_ns : 0;
	r->err = 0;
	if (new != TCP_ESTABLISHED) {
		/* tcp_reset and tcp_write_err set sk_err before tcp_done */
		r->err = sk->sk_err;
		if (!r->err)
			r->err = ECONNABORTED;
	}
	r->_pad = 0;
	submit(r);
}

static __always_inline void emit_close(const struct nt_head *h, int old, const struct sock *sk,
				       const struct sock_info *si)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
	struct nt_close *r;

	if (!tp)
		return;
	r = reserve_as(h, NT_CLOSE, sizeof(*r));
	if (!r)
		return;
	r->lifetime_ns = si && si->born_ns ? h->ts - si->born_ns : 0;
	r->tx_bytes = data_acked(tp, si, old);
	r->rx_bytes = data_received(tp, si, sk);
	r->segs_out = tp->segs_out;
	r->segs_in = tp->segs_in;
	r->retrans = tp->total_retrans;
	r->srtt_us = tp->srtt_us >> 3;
	r->old_state = old;
	__builtin_memset(r->_pad, 0, sizeof(r->_pad));
	submit(r);
}

/* The child's LISTEN>SYN_RECV record, sent late (see sock_info.syn_recv_ns). */
static __always_inline void emit_syn_recv(const struct nt_sock *tuple, __u64 ts)
{
	struct nt_state *r = reserve(sizeof(*r), NT_STATE);

	if (!r)
		return;
	head(&r->h, NT_STATE, sizeof(*r), ts);
	__builtin_memcpy(&r->h.sock, tuple, sizeof(r->h.sock));
	__builtin_memset(&r->h.owner, 0, sizeof(r->h.owner)); /* softirq: no owner yet */
	r->in_old_ns = 0;
	r->old_state = TCP_LISTEN;
	r->new_state = TCP_SYN_RECV;
	__builtin_memset(r->_pad, 0, sizeof(r->_pad));
	submit(r);
}

/*
 * One more transition in state_counts. Only the tuple's conditions of the
 * kernel filter apply here: user space counts in the kernel only when the
 * whole filter is of that kind (it needs no owner).
 */
static __always_inline void count_transition(const struct sock *sk, int old, int new)
{
	__u32 key = (old & (NT_STATES - 1)) * NT_STATES + (new & (NT_STATES - 1));
	__u64 *n;

	if (nt_filter.flags) {
		struct nt_sock tuple;

		read_tuple(&tuple, &sk->__sk_common);
		if (!tuple.sport) /* a released port: the connection's own copy of it stays */
			tuple.sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
		if (!wanted(&tuple, 0))
			return;
	}
	n = bpf_map_lookup_elem(&state_counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1); /* tasks can preempt each other mid-program */
}

/*
 * The socket table's part of a transition, and the records the user asked
 * for. Without state records, only the transitions that begin a socket,
 * establish it or close it change anything the table or a record needs: the
 * others (FIN_WAIT1, CLOSE_WAIT, ...) return before any map is touched.
 */
static __always_inline void track(const struct sock *sk, int old, int new)
{
	__u64 key = (__u64)sk, now, last_ns = 0, syn_recv_ns = 0;
	struct sock_info fresh, *si;
	struct nt_sock tuple;
	struct nt_head h;
	int begins;

	/*
	 * Leaving CLOSE (connect, listen) or a child's LISTEN>SYN_RECV begins a
	 * socket: no entry of its own can exist, so its entry is filled on the
	 * stack and put in once, without the lookups that would miss or merely
	 * find it again (one that a lost CLOSE left at this address is stale and
	 * replaced).
	 */
	begins = old == TCP_CLOSE || (old == TCP_LISTEN && new == TCP_SYN_RECV);
	if (!WANTS(NT_STATE) && !begins && new != TCP_ESTABLISHED && new != TCP_CLOSE)
		return;
	now = bpf_ktime_get_ns();
	if (begins) {
		__builtin_memset(&fresh, 0, sizeof(fresh));
		si = &fresh;
	} else {
		si = bpf_map_lookup_elem(&socks, &key);
		if (!si && new != TCP_CLOSE) {
			__builtin_memset(&fresh, 0, sizeof(fresh));
			if (!bpf_map_update_elem(&socks, &key, &fresh, BPF_NOEXIST))
				count_sock(SOCK_INSERTS);
			si = bpf_map_lookup_elem(&socks, &key);
		}
	}
	if (si) {
		last_ns = si->last_ns;
		syn_recv_ns = si->syn_recv_ns;
		si->syn_recv_ns = 0;
		if (old == TCP_CLOSE) {
			/* connect() and listen() run in the owner's syscall */
			capture_task_owner(&si->owner);
			si->born_ns = now;
			si->mark_ns = now;
		} else if (old == TCP_LISTEN && new == TCP_SYN_RECV) {
			si->born_ns = now; /* a child: its owner is known at accept */
			if (WANTS(NT_STATE))
				si->syn_recv_ns = now;
		} else if (old == TCP_SYN_RECV && new == TCP_ESTABLISHED) {
			si->mark_ns = now;
		}
		if (new == TCP_ESTABLISHED) {
			struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

			if (tp) {
				si->acked_base = tp->bytes_acked;
				si->rcvd_base = tp->bytes_received;
			}
		}
		/* kept whether or not the ring has room for this record */
		if (new == TCP_ESTABLISHED || new == TCP_LISTEN)
			read_sock(&si->sock, &sk->__sk_common);
		si->last_ns = now;
		if (begins) {
			if (bpf_map_update_elem(&socks, &key, &fresh, BPF_ANY))
				si = 0; /* as if it had never been put in */
			else
				count_sock(SOCK_INSERTS);
		}
		if (si && si->syn_recv_ns)
			return;
	}

	/* the tuple is fixed from ESTABLISHED or LISTEN on: read once then, copied after */
	if (si && (new == TCP_ESTABLISHED || new == TCP_LISTEN || si->sock.cookie))
		__builtin_memcpy(&tuple, &si->sock, sizeof(tuple));
	else
		read_sock(&tuple, &sk->__sk_common);
	if (si && !tuple.sport)
		tuple.sport = si->sock.sport; /* CLOSE: the port is already released */
	if (!wanted(&tuple, si ? &si->owner : 0))
		goto out;

	head(&h, NT_STATE, sizeof(struct nt_state), now);
	__builtin_memcpy(&h.sock, &tuple, sizeof(h.sock));
	copy_owner(&h.owner, si);
	/* in the order a reader expects: the transition, then what it resolved */
	if (WANTS(NT_STATE)) {
		if (syn_recv_ns)
			emit_syn_recv(&tuple, syn_recv_ns);
		emit_state(&h, old, new, last_ns);
	}
	if (old == TCP_SYN_SENT && WANTS(NT_CONNECT))
		emit_connect(&h, new, sk, si);
	if (new == TCP_CLOSE && old != TCP_LISTEN && WANTS(NT_CLOSE))
		emit_close(&h, old, sk, si);
out:
	if (new == TCP_CLOSE && !bpf_map_delete_elem(&socks, &key))
		count_sock(SOCK_DELETES);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, int old, int new)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (nt_count_states)
		count_transition(sk, old, new);
	if (nt_track)
		track(sk, old, new);
	if (new == TCP_CLOSE)
		forget_cookie((__u64)sk);
	return 0;
}
