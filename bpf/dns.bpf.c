/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * DNS messages: every UDP datagram and TCP segment a socket sends to, or
 * receives from, a remote port 53, copied (NT_DNS_MAX bytes at most) into the
 * ring as struct nt_dns for user space to parse. The UDP socket storage
 * (udp_store.bpf.h) gives UDP sockets their owners.
 *
 * cgroup_skb egress and ingress at the cgroup v2 root see every packet of
 * every local socket, in every network namespace, with its socket. They run
 * per packet, so the common case is decided from the socket alone: a
 * connected socket whose remote port is not 53 (all TCP but listeners) leaves
 * after one load and two compares. Only unconnected sockets, whose packets
 * name their peer, have their headers read.
 */
#include "nettrace.bpf.h"
#include "udp_store.bpf.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define DNS_PORT 53
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/*
 * 6.2+; weak so that older kernels still load the object (the DNS hook is then
 * left off). The UDP unit uses bpf_cast_to_kern_ctx instead: bpftool 7.1's
 * linker (libbpf 1.1) cannot link one kfunc called from two units.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* The packet's socket as the kernel's struct sock, to read what bpf_sock does not show. */
static __always_inline struct sock *sock_of(struct bpf_sock *sk)
{
	return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock));
}

/* counters user space reads beside the ring's drops */
enum { DNS_MESSAGES, DNS_FRAGMENTS, DNS_COUNTS };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNS_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} dns_counts SEC(".maps");

/* The record being built: too big for the stack, and sent with its length known only at run time. */
struct dns_buf {
	struct nt_dns r;
	__u8 payload[NT_DNS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_buf);
} dns_bufs SEC(".maps");

/*
 * The owner of a socket that sent DNS, taken where its first packet leaves
 * (a query's sendmsg or a connect's SYN run in the sender's context), so the
 * answers, which arrive in softirq, are attributed to it too.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct nt_owner);
} dns_owners SEC(".maps");

static __always_inline void dns_count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&dns_counts, &which);

	if (n)
		*n += 1;
}

static __always_inline void dns_owner(struct bpf_sock *sk, int egress, struct nt_owner *dst)
{
	struct nt_owner *o;
	struct udp_info *ui;

	__builtin_memset(dst, 0, sizeof(*dst));
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	o = bpf_sk_storage_get(&dns_owners, sk, 0, egress ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!o)
		return;
	if (!o->known && egress) {
		/* a UDP socket made while tracing has its creator already */
		ui = sk->protocol == IPPROTO_UDP ? bpf_sk_storage_get(&udp_store, sk, 0, 0) : 0;
		if (ui && ui->owner.known)
			__builtin_memcpy(o, &ui->owner, sizeof(*o));
		else
			capture_owner(o);
	}
	__builtin_memcpy(dst, o, sizeof(*dst));
}

/*
 * A packet of a socket that may talk to a port 53: its headers read, and if
 * its remote port is 53 and it carries a payload, the record sent.
 */
static __always_inline int dns_packet(struct __sk_buff *skb, struct bpf_sock *sk, int egress)
{
	__u32 key = 0, off, size;
	__u64 len, cap;
	struct dns_buf *b;
	struct nt_sock *t;
	__u16 ports[2];
	__u8 l4;

	b = bpf_map_lookup_elem(&dns_bufs, &key);
	if (!b)
		return 1;
	t = &b->r.h.sock;
	__builtin_memset(t, 0, sizeof(*t));
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		l4 = ip.protocol;
		if (l4 != IPPROTO_UDP && l4 != IPPROTO_TCP)
			return 1;
		off = ip.ihl * 4;
		t->family = 4;
		*(__u32 *)t->saddr = egress ? ip.saddr : ip.daddr;
		*(__u32 *)t->daddr = egress ? ip.daddr : ip.saddr;
		if (ip.frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
			/* only the first fragment has ports; a message that big is counted, not copied */
			if (!(ip.frag_off & bpf_htons(IP_OFFSET)))
				dns_count(DNS_FRAGMENTS);
			return 1;
		}
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		l4 = ip6.nexthdr; /* extension headers (fragments among them) are not followed */
		if (l4 != IPPROTO_UDP && l4 != IPPROTO_TCP)
			return 1;
		off = sizeof(ip6);
		t->family = 6;
		__builtin_memcpy(t->saddr, egress ? &ip6.saddr : &ip6.daddr, 16);
		__builtin_memcpy(t->daddr, egress ? &ip6.daddr : &ip6.saddr, 16);
	} else {
		return 1;
	}
	if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
		return 1;
	if (ports[egress ? 1 : 0] != bpf_htons(DNS_PORT))
		return 1;
	t->sport = bpf_ntohs(ports[egress ? 0 : 1]);
	t->dport = DNS_PORT;
	if (l4 == IPPROTO_UDP) {
		off += 8;
	} else {
		__u8 doff;

		if (bpf_skb_load_bytes(skb, off + 12, &doff, 1))
			return 1;
		off += (doff >> 4) * 4;
	}
	if (skb->len <= off)
		return 1; /* a bare TCP ACK, SYN or FIN: no message */
	len = skb->len - off;
	cap = len < NT_DNS_MAX ? len : NT_DNS_MAX;
	barrier_var(cap); /* the verifier needs the bounds checked on the register it is given */
	if (cap == 0 || cap > NT_DNS_MAX)
		return 1;
	if (bpf_skb_load_bytes(skb, off, b->payload, cap))
		return 1;

	t->cookie = bpf_get_socket_cookie(skb);
	t->netns = sock_of(sk)->__sk_common.skc_net.net->ns.inum;
	dns_owner(sk, egress, &b->r.h.owner);
	if (!wanted(t, &b->r.h.owner))
		return 1;
	size = sizeof(b->r) + ((cap + 7) & ~7);
	barrier_var(size); /* clang knows this holds; kept, the verifier's own bound on size is looser */
	if (size > sizeof(*b))
		return 1;
	head(&b->r.h, NT_DNS, size, bpf_ktime_get_ns());
	b->r.len = len;
	b->r.captured = cap;
	b->r.dir = egress ? NT_DNS_SENT : NT_DNS_RECEIVED;
	b->r.proto = l4;
	dns_count(DNS_MESSAGES);
	if (bpf_ringbuf_output(&events, b, size, wake_flags()))
		count_drops(NT_DNS, 1);
	return 1;
}

/* Return 1: a cgroup_skb program that returns 0 drops the packet. */
static __always_inline int dns_skb(struct __sk_buff *skb, int egress)
{
	struct bpf_sock *sk = skb->sk;

	if (!WANTS(NT_DNS) || !sk)
		return 1;
	if (sk->dst_port != bpf_htons(DNS_PORT)) {
		/* connected elsewhere, or a listener: nothing of DNS */
		if (sk->dst_port || sk->state == TCP_LISTEN)
			return 1;
	}
	return dns_packet(skb, sk, egress);
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	return dns_skb(skb, 1);
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	return dns_skb(skb, 0);
}
