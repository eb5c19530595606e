// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP lifecycle tracing: every state transition, connect outcomes, accepts and
 * close totals, all attributed to the socket's owning process.
 *
 * Transitions mostly run in softirq, where `current` is whoever was
 * interrupted. So the owner is captured only where the kernel is known to run
 * in the owner's context (connect and listen move the socket out of CLOSE from
 * the syscall; accept returns in the accepting process) and kept per socket.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "nettrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* keeps the record types in the object's BTF for the generator (see struct nt_records) */
const struct nt_records *nt_records __attribute__((unused));

#define AF_INET6 10
#define IPPROTO_TCP 6
#define ECONNABORTED 103
#define SOCK_DONE 1 /* enum sock_flags: set by tcp_fin() when the peer's FIN arrives */

#include "steering.bpf.h"
#include "compat.bpf.h"

/* user space sets max_entries before load */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* records the ring could not take, per CPU: key 0 all of them, key NT_<kind> that kind's */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NT_KINDS + 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

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
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_info);
} socks SEC(".maps");

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

/*
 * Load-time settings, as libbpf-tools keeps them: the loader writes them
 * before loading, and the verifier takes them as constants, so what a
 * setting turns off is pruned from the program rather than tested per run.
 */
const volatile __u32 nt_events = NT_EVENTS_ALL; /* NT_EVENT(kind) of each kind that goes to the ring */
const volatile __u32 nt_track = 1;              /* keep the socket table: owners, lifetimes, byte bases */
const volatile __u32 nt_count_states = 0;       /* count every transition per CPU in state_counts */
const volatile struct nt_filter nt_filter = {};  /* what the kernel checks of the user's filter */

#define WANTS(kind) (nt_events & NT_EVENT(kind))

/* Transitions per (old, new) state, per CPU: `nettrace states` reads them instead of a record each. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NT_STATES * NT_STATES);
	__type(key, __u32);
	__type(value, __u64);
} state_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} filter_ports SEC(".maps");

#include "cgroup_filter.bpf.h"

/*
 * Whether a socket passes what the kernel was told of the user's filter.
 * Asked before reserving, so a full ring counts only drops the user wanted.
 */
static __always_inline int wanted(const struct nt_sock *s, const struct nt_owner *o)
{
	__u32 flags = nt_filter.flags;
	__u16 sport, dport;
	__u32 pid;

	if (!flags)
		return 1;
	if ((flags & NT_FILTER_FAMILY) && s->family != nt_filter.family)
		return 0;
	if ((flags & NT_FILTER_NETNS) && s->netns != nt_filter.netns)
		return 0;
	if (flags & NT_FILTER_PID) {
		pid = o ? o->pid : 0;
		if (!o || !o->known || !bpf_map_lookup_elem(&filter_pids, &pid))
			return 0;
	}
	if (flags & NT_FILTER_PORT) {
		sport = s->sport;
		dport = s->dport;
		if (!bpf_map_lookup_elem(&filter_ports, &sport) && !bpf_map_lookup_elem(&filter_ports, &dport))
			return 0;
	}
	if ((flags & NT_FILTER_CGROUP) && !cgroup_wanted(o))
		return 0;
	return 1;
}

static __always_inline void add_drops(__u32 key, __u64 records)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &key);

	if (n)
		__sync_fetch_and_add(n, records); /* tasks can preempt each other mid-program */
}

static __always_inline void count_drops(__u32 kind, __u64 records)
{
	if (!records)
		return;
	add_drops(0, records);
	add_drops(kind, records);
}

static __always_inline void *reserve(__u32 size, __u32 kind)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);

	if (!rec)
		count_drops(kind, 1);
	return rec;
}

/*
 * Wake the reader only when the ring is a quarter full: otherwise it drains on
 * its own timer, so wakeups cost nothing per record and bursts are absorbed.
 */
/* a quarter of the ring, asked of the kernel once: its size never changes after load */
static __u64 ring_quarter;

static __always_inline void submit(void *rec)
{
	__u64 quarter = ring_quarter;

	if (!quarter)
		ring_quarter = quarter = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) >> 2;
	bpf_ringbuf_submit(rec, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > quarter ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void head(struct nt_head *h, __u16 kind, __u16 size, __u64 now)
{
	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->_pad = 0;
	h->ts = now;
}

static __always_inline void capture_owner(struct nt_owner *o)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	o->cgroup = bpf_get_current_cgroup_id();
	o->pid = pid_tgid >> 32;
	o->tid = (__u32)pid_tgid;
	o->uid = (__u32)bpf_get_current_uid_gid();
	o->known = 1;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

/*
 * The same as capture_owner, for tracing programs: the fields read straight
 * from the task instead of through four helper calls, each a call and return
 * that the kernel's return-thunk mitigations make dear. Equal values: the
 * helpers return these fields (uid mapped through init_user_ns, the identity).
 */
static __always_inline void capture_task_owner(struct nt_owner *o)
{
	struct task_struct *t;

	if (!has_task_btf()) {
		capture_owner(o);
		return;
	}
	t = bpf_get_current_task_btf();
	o->cgroup = t->cgroups->dfl_cgrp->kn->id;
	o->pid = t->tgid;
	o->tid = t->pid;
	o->uid = t->cred->uid.val;
	o->known = 1;
	__builtin_memcpy(o->comm, t->comm, sizeof(o->comm));
	o->comm[sizeof(o->comm) - 1] = 0;
}

static __always_inline void copy_owner(struct nt_owner *dst, const struct sock_info *si)
{
	if (si)
		__builtin_memcpy(dst, &si->owner, sizeof(*dst));
	else
		__builtin_memset(dst, 0, sizeof(*dst));
}

static __always_inline int is_v4_mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

/* Everything but the cookie; skc may also be an untrusted (read-only cast) pointer. */
static __always_inline void read_tuple(struct nt_sock *s, const struct sock_common *skc)
{
	s->netns = skc->skc_net.net->ns.inum;
	s->sport = skc->skc_num;
	s->dport = bpf_ntohs(skc->skc_dport);
	__builtin_memset(s->_pad, 0, sizeof(s->_pad));
	__builtin_memset(s->saddr, 0, sizeof(s->saddr));
	__builtin_memset(s->daddr, 0, sizeof(s->daddr));
	if (skc->skc_family == AF_INET6) {
		const __u32 *src = (const __u32 *)&skc->skc_v6_rcv_saddr;
		const __u32 *dst = (const __u32 *)&skc->skc_v6_daddr;

		if (is_v4_mapped(dst) &&
		    (is_v4_mapped(src) || (src[0] | src[1] | src[2] | src[3]) == 0)) {
			s->family = 4;
			*(__u32 *)s->saddr = src[3];
			*(__u32 *)s->daddr = dst[3];
		} else {
			s->family = 6;
			__builtin_memcpy(s->saddr, src, 16);
			__builtin_memcpy(s->daddr, dst, 16);
		}
	} else {
		s->family = 4;
		*(__u32 *)s->saddr = skc->skc_rcv_saddr;
		*(__u32 *)s->daddr = skc->skc_daddr;
	}
}

/* skc must be a BTF pointer (tp_btf, fexit, iter): fields are read directly. */
static __always_inline void read_sock(struct nt_sock *s, const struct sock_common *skc)
{
	s->cookie = sock_cookie(skc);
	read_tuple(s, skc);
}

/* Every record of one run starts with the same head: the socket, its owner, the time and CPU. */
static __always_inline void *reserve_as(const struct nt_head *h, __u16 kind, __u16 size)
{
	struct nt_head *r = reserve(size, kind);

	if (r) {
		__builtin_memcpy(r, h, sizeof(*r));
		r->kind = kind;
		r->size = size;
	}
	return r;
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

static __always_inline void emit_accept(__u64 key, const struct sock *btf_sk)
{
	struct sock_info *si = bpf_map_lookup_elem(&socks, &key);
	struct nt_sock tuple;
	struct nt_accept *r;
	__u64 now = bpf_ktime_get_ns();

	if (!si)
		return; /* not TCP, or established before tracing began */
	capture_task_owner(&si->owner);
	if (btf_sk)
		read_sock(&tuple, &btf_sk->__sk_common);
	else
		__builtin_memcpy(&tuple, &si->sock, sizeof(tuple));
	if (!WANTS(NT_ACCEPT) || !wanted(&tuple, &si->owner))
		return;
	r = reserve(sizeof(*r), NT_ACCEPT);
	if (!r)
		return;
	head(&r->h, NT_ACCEPT, sizeof(*r), now);
	__builtin_memcpy(&r->h.sock, &tuple, sizeof(r->h.sock));
	__builtin_memcpy(&r->h.owner, &si->owner, sizeof(r->h.owner));
	r->queued_ns = si->mark_ns ? now - si->mark_ns : 0;
	submit(r);
}

/*
 * Preferred accept hook. inet_csk_accept lost its flags/err/kern arguments to
 * struct proto_accept_arg in 6.10, which moves where fexit finds the result.
 */
SEC("fexit/inet_csk_accept")
int on_accept_fexit(__u64 *ctx)
{
	struct sock *sk;

	/*
	 * One load per branch: merged, clang would add a computed offset to
	 * ctx, which the verifier refuses. The barriers keep them apart.
	 */
	if (bpf_core_type_exists(struct proto_accept_arg)) {
		sk = (struct sock *)ctx[2];
		barrier_var(sk);
	} else {
		sk = (struct sock *)ctx[4];
		barrier_var(sk);
	}
	if (sk)
		emit_accept((__u64)sk, sk);
	return 0;
}

/*
 * Fallback for kernels without fentry/fexit: accept(2) and accept4(2) return
 * the new descriptor in the accepting process; follow it to the socket.
 */
struct sys_exit_ctx {
	__u64 _common;
	__s64 nr;
	__s64 ret;
};

static __always_inline int accept_exit(struct sys_exit_ctx *ctx)
{
	struct task_struct *task;
	struct file **fds;
	struct file *file;
	struct socket *sock;
	struct sock *sk;
	__s64 fd = ctx->ret;

	if (fd < 0)
		return 0;
	if (has_task_btf()) {
		/* BTF loads, not a probe read per hop: only what is not BTF-typed needs one */
		task = bpf_get_current_task_btf();
		fds = task->files->fdt->fd;
	} else {
		task = (struct task_struct *)bpf_get_current_task();
		fds = BPF_CORE_READ(task, files, fdt, fd);
	}
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (sk)
		emit_accept((__u64)sk, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int on_accept4_exit(struct sys_exit_ctx *ctx)
{
	return accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int on_accept_exit(struct sys_exit_ctx *ctx)
{
	return accept_exit(ctx);
}

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

#include "udp.bpf.h"
#include "dns.bpf.h"
