// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The one definition of what the program units share: the maps and settings
 * the headers declare with NT_SHARED (extern in every other unit, defined
 * here), the settings' defaults, and the license. The static linker resolves
 * the other units' extern declarations to these.
 */
#define NT_SHARED /* this unit defines what the others declare */
#include "nettrace.bpf.h"
#include "tcp_socks.bpf.h"
#include "udp_store.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* keeps the record types in the object's BTF for the generator (see struct nt_records) */
const struct nt_records *nt_records __attribute__((unused));

/* What the object does when the loader writes nothing: every kind, the socket table, no counting. */
const volatile __u32 nt_events = NT_EVENTS_ALL;
const volatile __u32 nt_track = 1;
const volatile __u32 nt_count_states = 0;
const volatile struct nt_filter nt_filter = {};
