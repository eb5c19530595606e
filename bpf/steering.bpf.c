/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Receive steering: on which CPU the kernel processed each TCP socket's
 * incoming segments, on which CPU its reader consumed them, and on which CPU
 * they entered the stack before RPS moved them. Its programs are loaded
 * only when steering is asked for (names steer_*).
 *
 * Everything here runs per packet or per read, so it only counts into maps
 * that user space reads periodically: nothing goes to the ring buffer.
 *
 * - processed-on: cgroup_skb/ingress, attached at the cgroup v2 root. It runs
 *   in sk_filter from tcp_v4_rcv/tcp_v6_rcv in the softirq that RPS chose,
 *   before a socket owned by its reader defers the segment to its backlog, so
 *   backlog processing in the reader's context never counts as local.
 * - read-on: tp_btf/sock_recv_length, in the reader's recvmsg.
 * - entered-on: the netif_rx / netif_receive_skb / GRO entry tracepoints, which
 *   run before RPS. They see no socket yet, so they count per flow hash, which
 *   the socket's segments still carry at ingress; and only on queues where RPS
 *   or RFS is set up, since elsewhere entered-on is processed-on.
 */
#include "nettrace.bpf.h"

/* Named enums, held in the object's BTF by nt_steer_consts below, so the addon's skeleton carries them. */
enum nt_steer_cpu {
	NT_STEER_NO_CPU = 0xffff, /* no read seen yet */
};

/* Segments of one socket processed on `cpu` while its reader last ran on `reader_cpu`. */
struct nt_steer_cell_key {
	__u64 cookie;
	__u32 ifindex;     /* interface the segments arrived on (in the socket's namespace) */
	__u16 cpu;         /* processed on */
	__u16 reader_cpu;  /* where the reader last ran then; NT_STEER_NO_CPU before any read */
};

struct nt_steer_cell {
	__u64 segs;        /* TCP segments (a GSO/GRO packet counts its segments) */
	__u64 packets;     /* packets as the stack saw them */
	__u32 hash;        /* the flow hash RPS/RFS steer by, to join entered-on counts */
	__u32 _pad;
};

struct nt_steer_reader {
	__u32 cpu;         /* the CPU of the last read */
	__u32 pid;         /* the process that read last */
};

/* per CPU (the read-on CPU) */
struct nt_steer_reads {
	__u64 reads;       /* recvmsg calls that returned data */
	__u64 bytes;
};

/* steer_counts' entries: the first STEER_UNHASHED count inserts into the maps (for eviction accounting) */
enum nt_steer_counter {
	STEER_CELL_INSERTS,
	STEER_READER_INSERTS,
	STEER_READS_INSERTS,
	STEER_ENTRY_INSERTS,
	STEER_UNHASHED,    /* packets entering with no flow hash yet: no flow to count them for */
	STEER_COUNTS,
};

/* never set: its type keeps the two enums above in the object's BTF (as nt_records does the records') */
struct nt_steer_consts {
	enum nt_steer_cpu cpu;
	enum nt_steer_counter counter;
};
const struct nt_steer_consts *nt_steer_consts __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct nt_steer_cell_key);
	__type(value, struct nt_steer_cell);
} steer_cells SEC(".maps");

/* for user space: written only when a socket's reader moves */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct nt_steer_reader);
} steer_readers SEC(".maps");

/* the same on the socket itself: the ingress path finds it without a hash lookup */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct nt_steer_reader);
} steer_reader_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct nt_steer_reads);
} steer_reads SEC(".maps");

/* segments per flow hash, per CPU they entered the stack on */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} steer_entry SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} steer_counts SEC(".maps");

static __always_inline void steer_count(__u32 which, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&steer_counts, &which);

	if (c)
		*c += n;
}

/* The value under key, inserted zeroed if missing; insertions counted for eviction accounting. */
static __always_inline void *steer_slot(void *map, const void *key, const void *zero, __u32 inserts)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	if (!bpf_map_update_elem(map, key, zero, BPF_NOEXIST))
		steer_count(inserts, 1);
	return bpf_map_lookup_elem(map, key);
}

SEC("cgroup_skb/ingress")
int steer_ingress(struct __sk_buff *skb)
{
	struct nt_steer_cell_key key = {};
	struct nt_steer_cell zero = {}, *cell;
	struct nt_steer_reader *reader;
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	/* a listener's segments are handshakes: nobody reads them */
	if (!sk || sk->protocol != IPPROTO_TCP || sk->state == BPF_TCP_LISTEN)
		return 1;
	key.cookie = bpf_get_socket_cookie(skb);
	key.ifindex = skb->ingress_ifindex;
	key.cpu = bpf_get_smp_processor_id();
	reader = bpf_sk_storage_get(&steer_reader_sk, sk, 0, 0);
	key.reader_cpu = reader && reader->pid ? reader->cpu : NT_STEER_NO_CPU;
	cell = steer_slot(&steer_cells, &key, &zero, STEER_CELL_INSERTS);
	if (cell) {
		/* only this CPU writes a cell keyed by it, and softirqs do not nest */
		cell->segs += skb->gso_segs ? skb->gso_segs : 1;
		cell->packets += 1;
		cell->hash = skb->hash;
	}
	return 1; /* never drops: this program only counts */
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(steer_recv, struct sock *sk, int ret, int flags)
{
	struct nt_steer_reads zero_reads = {}, *reads;
	struct nt_steer_reader me, *reader;
	__u64 cookie;

	if (ret <= 0 || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	cookie = bpf_get_socket_cookie(sk);
	me.cpu = bpf_get_smp_processor_id();
	me.pid = bpf_get_current_pid_tgid() >> 32;
	reader = bpf_sk_storage_get(&steer_reader_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (reader && (reader->cpu != me.cpu || reader->pid != me.pid)) {
		/* written only on change: the ingress side reads this line per segment */
		*reader = me;
		if (bpf_map_update_elem(&steer_readers, &cookie, &me, BPF_EXIST) &&
		    !bpf_map_update_elem(&steer_readers, &cookie, &me, BPF_NOEXIST))
			steer_count(STEER_READER_INSERTS, 1);
	}
	reads = steer_slot(&steer_reads, &cookie, &zero_reads, STEER_READS_INSERTS);
	if (reads) {
		/* a task preempted mid-program can share this CPU's slot */
		__sync_fetch_and_add(&reads->reads, 1);
		__sync_fetch_and_add(&reads->bytes, ret);
	}
	return 0;
}

/*
 * Whether RPS or RFS may move this packet to another CPU, as get_rps_cpu()
 * decides it: only with an RPS map or a flow table on its receive queue.
 * Otherwise it is processed where it entered, which processed-on already
 * counts, so the common case costs a few loads and no map update.
 */
static __always_inline int steerable(const struct sk_buff *skb)
{
	struct net_device *dev = skb->dev;
	struct netdev_rx_queue *rx;
	void *map = 0, *flows = 0;
	__u32 q = skb->queue_mapping;
	__u64 base = 0;

	if (!dev)
		return 0;
	q = q ? q - 1 : 0; /* queue_mapping holds the recorded rx queue + 1 */
	if (q >= dev->real_num_rx_queues)
		q = 0;
	/* read as a number: the queue array is indexed, which BTF pointers do not allow */
	if (bpf_core_read(&base, sizeof(base), &dev->_rx) || !base)
		return 0;
	rx = (struct netdev_rx_queue *)(base + q * bpf_core_type_size(struct netdev_rx_queue));
	bpf_core_read(&map, sizeof(map), &rx->rps_map);
	bpf_core_read(&flows, sizeof(flows), &rx->rps_flow_table);
	return map || flows;
}

static __always_inline void steer_entered(const struct sk_buff *skb)
{
	struct skb_shared_info *shinfo;
	__u64 zero = 0, *n;
	__u32 hash = skb->hash;
	__u16 segs = 0;

	if (!steerable(skb))
		return;
	if (!hash) {
		steer_count(STEER_UNHASHED, 1);
		return;
	}
	/* skb->end is an offset from head on 64-bit kernels */
	shinfo = (struct skb_shared_info *)(skb->head + skb->end);
	bpf_probe_read_kernel(&segs, sizeof(segs), &shinfo->gso_segs);
	n = steer_slot(&steer_entry, &hash, &zero, STEER_ENTRY_INSERTS);
	if (n)
		__sync_fetch_and_add(n, segs ? segs : 1); /* a hardirq netif_rx can nest in a softirq entry */
}

/* One per way into the stack; none runs twice for the same packet. */
SEC("tp_btf/netif_rx_entry")
int BPF_PROG(steer_rx_entry, const struct sk_buff *skb)
{
	steer_entered(skb);
	return 0;
}

SEC("tp_btf/netif_receive_skb_entry")
int BPF_PROG(steer_receive_entry, const struct sk_buff *skb)
{
	steer_entered(skb);
	return 0;
}

SEC("tp_btf/netif_receive_skb_list_entry")
int BPF_PROG(steer_list_entry, const struct sk_buff *skb)
{
	steer_entered(skb);
	return 0;
}

SEC("tp_btf/napi_gro_receive_entry")
int BPF_PROG(steer_gro_entry, const struct sk_buff *skb)
{
	steer_entered(skb);
	return 0;
}

SEC("tp_btf/napi_gro_frags_entry")
int BPF_PROG(steer_gro_frags_entry, const struct sk_buff *skb)
{
	steer_entered(skb);
	return 0;
}
