/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel side of the user's filter: what nt_filter and the sets below can
 * decide, so filtered-out sockets never reach the ring. Necessary conditions
 * only: user space still applies the whole filter. Included by nettrace.bpf.h
 * after the settings; its maps are defined in shared.bpf.c.
 */
#ifndef NETTRACE_FILTER_BPF_H
#define NETTRACE_FILTER_BPF_H

NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps");

NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} filter_ports SEC(".maps");

/*
 * The cgroup v2 ids of the containers and units the user named (--container,
 * --unit, `cgroup ID`), each with every cgroup below it as it stood when
 * tracing began.
 */
NT_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps");

/* Whether the owner is known and in one of the cgroups. */
static __always_inline int cgroup_wanted(const struct nt_owner *o)
{
	__u64 id;

	if (!o || !o->known)
		return 0;
	id = o->cgroup;
	return bpf_map_lookup_elem(&filter_cgroups, &id) != 0;
}

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

#endif /* NETTRACE_FILTER_BPF_H */
