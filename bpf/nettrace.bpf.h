/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every program unit shares: the load-time settings, the ring and its
 * drop counts, the kernel side of the user's filter, and reading a socket's
 * tuple and a process's identity into the records of bpf/nettrace.h.
 *
 * The object user space loads is linked from several units (see the
 * Makefile). What they share is declared here once and defined once, in
 * shared.bpf.c, which defines NT_SHARED as nothing before including this
 * header: in every other unit it is `extern`, and the static linker
 * (bpftool gen object) resolves each name to that one definition, so the
 * linked object holds each map and setting once.
 */
#ifndef NETTRACE_BPF_H
#define NETTRACE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "nettrace.h"

#ifndef NT_SHARED
#define NT_SHARED extern
#endif

#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/*
 * Load-time settings, as libbpf-tools keeps them: the loader writes them
 * before loading, and the verifier takes them as constants, so what a
 * setting turns off is pruned from the program rather than tested per run.
 * Their defaults are in shared.bpf.c.
 */
extern const volatile __u32 nt_events;          /* NT_EVENT(kind) of each kind that goes to the ring */
extern const volatile __u32 nt_track;           /* keep the socket table: owners, lifetimes, byte bases */
extern const volatile __u32 nt_count_states;    /* count every transition per CPU in state_counts */
extern const volatile struct nt_filter nt_filter; /* what the kernel checks of the user's filter */

#define WANTS(kind) (nt_events & NT_EVENT(kind))

#include "compat.bpf.h"
#include "filter.bpf.h"

/* user space sets max_entries before load */
NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* records the ring could not take, per CPU: key 0 all of them, key NT_<kind> that kind's */
NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NT_KINDS + 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* a quarter of the ring, asked of the kernel once: its size never changes after load */
NT_SHARED __u64 ring_quarter;

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
static __always_inline __u64 wake_flags(void)
{
	__u64 quarter = ring_quarter;

	if (!quarter)
		ring_quarter = quarter = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) >> 2;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > quarter ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void submit(void *rec)
{
	bpf_ringbuf_submit(rec, wake_flags());
}

static __always_inline void head(struct nt_head *h, __u16 kind, __u16 size, __u64 now)
{
	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->_pad = 0;
	h->ts = now;
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

#endif /* NETTRACE_BPF_H */
