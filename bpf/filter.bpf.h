/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel filter's cgroup set: the cgroup v2 ids of the containers and
 * units the user named (--container, --unit, `cgroup ID`), each with every
 * cgroup below it as it stood when tracing began.
 */
#ifndef NETTRACE_CGROUP_FILTER_H
#define NETTRACE_CGROUP_FILTER_H

struct {
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

#endif
