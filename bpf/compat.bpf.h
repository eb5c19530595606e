/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What older kernels lack in tracing programs, and what nettrace does instead.
 * Each choice is a CO-RE check, a constant once libbpf has relocated the
 * program against the running kernel's BTF, so the verifier never walks the
 * branch a kernel cannot run: a helper it does not know is no rejection there.
 *
 * - bpf_get_current_task_btf (5.11): the owner comes from the four helpers instead.
 * - bpf_get_socket_cookie in tracing programs (5.12): sockets get ids of
 *   nettrace's own, kept per socket address from first sight to CLOSE.
 * - bpf_sk_storage_get in tracing programs (5.11): the UDP snapshot lists
 *   sockets without nettrace's counters (the udp hook needs 6.3 anyway).
 *
 * Included by nettrace.bpf.h; its maps are defined in shared.bpf.c.
 */
#ifndef NETTRACE_COMPAT_BPF_H
#define NETTRACE_COMPAT_BPF_H

/*
 * BPF_CALL_x leaves a typedef btf_<helper> in the kernel's BTF for every
 * helper implementation, so the variant a kernel has can be told by CO-RE.
 */
static __always_inline int has_task_btf(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
}

static __always_inline int has_cookie_helper(void)
{
	return bpf_core_type_exists(btf_bpf_get_socket_ptr_cookie);
}

/* bpf_sk_storage_get from tracing programs (iterators included), 5.11 */
static __always_inline int has_tracing_sk_storage(void)
{
	return bpf_core_type_exists(btf_bpf_sk_storage_get_tracing);
}

/* socket address -> id, without the cookie helper */
NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} own_cookies SEC(".maps");

/* ids handed out per CPU: no fetch-and-add before 5.12 either */
NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} own_cookie_seq SEC(".maps");

/*
 * An id of nettrace's own: the CPU in the top bits, a count below, all under
 * 2^53 so that JavaScript numbers hold it exactly. Unlike the kernel's cookie
 * it is not what ss -e shows, and a timewait minisocket gets one of its own.
 */
static __always_inline __u64 own_cookie(const void *sk)
{
	__u64 key = (__u64)sk, id, *seen, *seq;
	__u32 zero = 0;

	seen = bpf_map_lookup_elem(&own_cookies, &key);
	if (seen)
		return *seen;
	seq = bpf_map_lookup_elem(&own_cookie_seq, &zero);
	if (!seq)
		return 0;
	*seq += 1;
	id = ((__u64)(bpf_get_smp_processor_id() + 1) << 40) | (*seq & ((1ULL << 40) - 1));
	if (bpf_map_update_elem(&own_cookies, &key, &id, BPF_NOEXIST)) {
		seen = bpf_map_lookup_elem(&own_cookies, &key); /* another CPU was first */
		return seen ? *seen : id;
	}
	return id;
}

/* skc must be a BTF pointer. */
static __always_inline __u64 sock_cookie(const struct sock_common *skc)
{
	__u64 cookie;

	if (!has_cookie_helper())
		return own_cookie(skc);
	/* once generated the cookie sits in the socket: the helper call is only needed the first time */
	cookie = skc->skc_cookie.counter;
	return cookie ? cookie : bpf_get_socket_cookie((void *)skc);
}

/* At CLOSE: the address may hold another socket next. */
static __always_inline void forget_cookie(__u64 key)
{
	if (!has_cookie_helper())
		bpf_map_delete_elem(&own_cookies, &key);
}

#endif
