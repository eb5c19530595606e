/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of what crosses the ring buffer. User space's offsets are
 * generated from the compiled object's BTF (scripts/gen-records.js writes
 * src/layout.ts; CI fails if it differs), so nothing here is copied by hand.
 *
 * Every record starts with struct nt_head, so a reader can walk a batch by
 * `size` without knowing every kind. Records are multiples of 8 bytes so the
 * next one stays aligned when the addon packs them back to back.
 * Integers are host byte order (ports too); addresses are network order.
 */
#ifndef NETTRACE_H
#define NETTRACE_H

#define NT_COMM_LEN 16

enum nt_kind {
	NT_STATE = 1,   /* one TCP state transition */
	NT_CONNECT = 2, /* an active open resolved: established or failed */
	NT_ACCEPT = 3,  /* a passive open handed to a process by accept() */
	NT_CLOSE = 4,   /* a socket reached CLOSE: its lifetime totals */
	NT_UDP = 5,     /* a UDP socket was created or released (struct nt_udp) */
	NT_DNS = 6,     /* a DNS message a socket sent to or received from port 53 (struct nt_dns) */
};

/* The highest kind: per-kind tables have NT_KINDS + 1 entries. */
#define NT_KINDS NT_DNS

/* The bit of a kind in nt_events, the load-time set of kinds that reach the ring. */
#define NT_EVENT(kind) (1u << (kind))
#define NT_EVENTS_ALL (NT_EVENT(NT_STATE) | NT_EVENT(NT_CONNECT) | NT_EVENT(NT_ACCEPT) | \
		       NT_EVENT(NT_CLOSE) | NT_EVENT(NT_UDP) | NT_EVENT(NT_DNS))

/* TCP states as the kernel numbers them, for counting transitions (state_counts: old * NT_STATES + new). */
#define NT_STATES 16

/* The socket a record is about. */
struct nt_sock {
	__u64 cookie;      /* socket cookie: one per socket, never reused */
	__u32 netns;       /* network namespace inode number */
	__u16 sport;       /* local port */
	__u16 dport;       /* remote port */
	__u8 family;       /* 4 or 6; v4-mapped IPv6 is reported as 4 */
	__u8 _pad[7];
	__u8 saddr[16];    /* local address; IPv4 uses the first 4 bytes */
	__u8 daddr[16];    /* remote address */
};

/* The process that owns the socket: the one that connected, listened or accepted. */
struct nt_owner {
	__u64 cgroup;      /* cgroup v2 id */
	__u32 pid;         /* process id (tgid) */
	__u32 tid;         /* thread id */
	__u32 uid;
	__u32 known;       /* 0 while no owner is known (e.g. before accept) */
	char comm[NT_COMM_LEN];
};

struct nt_head {
	__u16 kind;        /* enum nt_kind */
	__u16 size;        /* bytes in this record, head included */
	__u16 cpu;         /* CPU the hook ran on */
	__u16 _pad;
	__u64 ts;          /* CLOCK_MONOTONIC ns */
	struct nt_sock sock;
	struct nt_owner owner;
};

struct nt_state {
	struct nt_head h;
	__u64 in_old_ns;   /* time spent in old_state; 0 when first seen */
	__u8 old_state;    /* TCP_* as the kernel numbers them */
	__u8 new_state;
	__u8 _pad[6];
};

struct nt_connect {
	struct nt_head h;
	__u64 latency_ns;  /* SYN_SENT to ESTABLISHED or to failure */
	__s32 err;         /* 0 established, else the errno the socket got */
	__u32 _pad;
};

struct nt_accept {
	struct nt_head h;
	__u64 queued_ns;   /* ESTABLISHED to accept() returning it */
};

struct nt_close {
	struct nt_head h;
	__u64 lifetime_ns; /* first transition seen to CLOSE; 0 if unknown */
	__u64 tx_bytes;    /* tcp_sock.bytes_acked */
	__u64 rx_bytes;    /* tcp_sock.bytes_received */
	__u32 segs_out;
	__u32 segs_in;
	__u32 retrans;     /* tcp_sock.total_retrans */
	__u32 srtt_us;     /* smoothed RTT, us */
	__u8 old_state;    /* state the socket left for CLOSE */
	__u8 _pad[7];
};

/*
 * One socket as the iter/tcp snapshot sees it: what `ss -tani` shows. Not a
 * ring record (no nt_head): the iterator writes these back to back.
 */
struct nt_flow {
	struct nt_sock sock;
	struct nt_owner owner; /* known when nettrace saw it connect, listen or accept */
	__u64 tx_bytes;    /* data bytes acknowledged so far */
	__u64 rx_bytes;    /* data bytes received so far */
	__u32 uid;         /* the socket's uid */
	__u32 ino;         /* the socket's inode, as /proc/PID/fd shows it */
	__u32 rx_queue;    /* Recv-Q: unread bytes; for LISTEN, connections awaiting accept */
	__u32 tx_queue;    /* Send-Q: unacknowledged bytes; for LISTEN, the accept backlog */
	__u32 srtt_us;
	__u32 retrans;
	__u32 segs_out;
	__u32 segs_in;
	__u8 state;        /* TCP_* as the kernel numbers them; a timewait minisocket its substate, as ss names it */
	__u8 _pad[7];
};

/* nt_udp.event */
enum nt_udp_event {
	NT_UDP_OPEN = 1,  /* socket(2) made it: the owner, no addresses yet */
	NT_UDP_CLOSE = 2, /* its last close released it: the totals */
};

/*
 * A UDP socket's lifetime. Datagrams and bytes are what sendmsg/recvmsg
 * returned to their callers since nettrace started (exact payload bytes);
 * drops are the kernel's own count for the socket (receive buffer full and
 * the like), as /proc/net/udp shows them.
 */
struct nt_udp {
	struct nt_head h;
	__u64 lifetime_ns;  /* socket(2) to release; 0 if created before tracing */
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u64 tx_datagrams;
	__u64 rx_datagrams;
	__u32 drops;
	__u8 event;         /* NT_UDP_OPEN or NT_UDP_CLOSE */
	__u8 _pad[3];
};

/* One UDP socket as the iter/udp snapshot sees it: what `ss -uanp` shows. */
struct nt_udp_flow {
	struct nt_sock sock;   /* daddr/dport zero while unconnected */
	struct nt_owner owner; /* known when nettrace saw it created or used */
	__u64 tx_bytes;        /* since tracing began, as in nt_udp */
	__u64 rx_bytes;
	__u64 tx_datagrams;
	__u64 rx_datagrams;
	__u64 born_ns;         /* CLOCK_MONOTONIC of socket(2); 0 if before tracing */
	__u32 uid;
	__u32 ino;
	__u32 rx_queue;        /* bytes queued for reading (sk_rmem_alloc) */
	__u32 tx_queue;        /* bytes queued for sending */
	__u32 drops;
	__u8 state;            /* TCP_ESTABLISHED (connected) or TCP_CLOSE (unconnected) */
	__u8 _pad[3];
};

/*
 * Traffic of an unconnected UDP socket with one remote endpoint, from the
 * addresses sendto/recvfrom name. Keys and values of the udp_peers map
 * (LRU: the endpoints least recently used leave first), read by user space.
 */
struct nt_udp_peer {
	__u64 cookie;      /* the local socket */
	__u8 addr[16];     /* remote address, network order; IPv4 in the first 4 bytes */
	__u16 port;        /* remote port */
	__u8 family;       /* 4 or 6 */
	__u8 _pad[5];
};

struct nt_udp_peer_bytes {
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u64 tx_datagrams;
	__u64 rx_datagrams;
};

/* nt_dns.dir */
enum nt_dns_dir {
	NT_DNS_SENT = 1,
	NT_DNS_RECEIVED = 2,
};

/* Bytes of a DNS message copied into its record: a classic UDP message whole, longer ones cut. */
enum nt_dns_copy {
	NT_DNS_MAX = 512,
};

/*
 * A DNS message a socket sent to, or received from, a remote port 53, over
 * UDP or TCP: a bounded copy of its payload follows this struct (`captured`
 * bytes, then zero to 7 bytes of padding, which h.size includes). The tuple
 * is the packet's: saddr/sport this side, daddr/dport the server, also when
 * the socket is unconnected. Over TCP the payload is the segment's, so a
 * message begins with its 2-byte length.
 */
struct nt_dns {
	struct nt_head h;
	__u32 len;         /* the payload's length in the packet */
	__u16 captured;    /* bytes of it that follow */
	__u8 dir;          /* NT_DNS_SENT or NT_DNS_RECEIVED */
	__u8 proto;        /* 17 (UDP) or 6 (TCP) */
};

/*
 * What the kernel side can decide of the user's filter, so filtered-out
 * sockets never reach the ring. Necessary conditions only: user space still
 * applies the whole filter. Ports and pids are sets in their own maps.
 */
enum nt_filter_flag {
	NT_FILTER_FAMILY = 1,  /* family must equal nt_filter.family */
	NT_FILTER_PID = 2,     /* the owner's pid must be in filter_pids */
	NT_FILTER_PORT = 4,    /* the local or the remote port must be in filter_ports */
	NT_FILTER_NETNS = 8,   /* the socket's network namespace inode must equal nt_filter.netns */
	NT_FILTER_CGROUP = 16, /* the owner's cgroup must be in filter_cgroups */
};

struct nt_filter {
	__u32 flags;       /* NT_FILTER_* */
	__u32 family;      /* 4 or 6 */
	__u32 netns;       /* network namespace inode number */
	__u32 _pad;
};

/*
 * Every type user space reads, as one struct that nothing uses but the
 * pointer nt_records in shared.bpf.c: it keeps them all in the object's BTF, where the generator
 * finds them (records are otherwise only locals, which BTF leaves out).
 */
struct nt_records {
	enum nt_kind kind;
	enum nt_udp_event udp_event;
	struct nt_head head;
	struct nt_state state;
	struct nt_connect connect;
	struct nt_accept accept;
	struct nt_close close;
	struct nt_udp udp;
	struct nt_flow flow;
	struct nt_udp_flow udp_flow;
	struct nt_udp_peer udp_peer;
	struct nt_udp_peer_bytes udp_peer_bytes;
	enum nt_dns_dir dns_dir;
	enum nt_dns_copy dns_copy;
	struct nt_dns dns;
	enum nt_filter_flag filter_flag;
};

#endif /* NETTRACE_H */
