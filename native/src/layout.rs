//! Rust mirror of bpf/nettrace.h. The addon only needs `size` to frame records,
//! but the whole layout is exported so test/layout.test.ts can hold it against
//! the C header and the TypeScript decoder.

use std::mem::{offset_of, size_of};

pub const NT_COMM_LEN: usize = 16;

#[repr(C)]
pub struct NtSock {
    pub cookie: u64,
    pub netns: u32,
    pub sport: u16,
    pub dport: u16,
    pub family: u8,
    pub _pad: [u8; 7],
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
pub struct NtOwner {
    pub cgroup: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub known: u32,
    pub comm: [u8; NT_COMM_LEN],
}

#[repr(C)]
pub struct NtHead {
    pub kind: u16,
    pub size: u16,
    pub cpu: u16,
    pub _pad: u16,
    pub ts: u64,
    pub sock: NtSock,
    pub owner: NtOwner,
}

#[repr(C)]
pub struct NtState {
    pub h: NtHead,
    pub in_old_ns: u64,
    pub old_state: u8,
    pub new_state: u8,
    pub _pad: [u8; 6],
}

#[repr(C)]
pub struct NtConnect {
    pub h: NtHead,
    pub latency_ns: u64,
    pub err: i32,
    pub _pad: u32,
}

#[repr(C)]
pub struct NtAccept {
    pub h: NtHead,
    pub queued_ns: u64,
}

#[repr(C)]
pub struct NtClose {
    pub h: NtHead,
    pub lifetime_ns: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub retrans: u32,
    pub srtt_us: u32,
    pub old_state: u8,
    pub _pad: [u8; 7],
}
#[repr(C)]
pub struct NtUdp {
    pub h: NtHead,
    pub lifetime_ns: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_datagrams: u64,
    pub rx_datagrams: u64,
    pub drops: u32,
    pub event: u8,
    pub _pad: [u8; 3],
}

#[repr(C)]
pub struct NtDns {
    pub h: NtHead,
    pub len: u32,
    pub captured: u16,
    pub dir: u8,
    pub proto: u8,
}

#[repr(C)]
pub struct NtUdpFlow {
    pub sock: NtSock,
    pub owner: NtOwner,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_datagrams: u64,
    pub rx_datagrams: u64,
    pub born_ns: u64,
    pub uid: u32,
    pub ino: u32,
    pub rx_queue: u32,
    pub tx_queue: u32,
    pub drops: u32,
    pub state: u8,
    pub _pad: [u8; 3],
}

#[repr(C)]
pub struct NtUdpPeer {
    pub cookie: u64,
    pub addr: [u8; 16],
    pub port: u16,
    pub family: u8,
    pub _pad: [u8; 5],
}

#[repr(C)]
pub struct NtUdpPeerBytes {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_datagrams: u64,
    pub rx_datagrams: u64,
}

#[repr(C)]
pub struct NtFlow {
    pub sock: NtSock,
    pub owner: NtOwner,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub uid: u32,
    pub ino: u32,
    pub rx_queue: u32,
    pub tx_queue: u32,
    pub srtt_us: u32,
    pub retrans: u32,
    pub segs_out: u32,
    pub segs_in: u32,
    pub state: u8,
    pub _pad: [u8; 7],
}

#[repr(C)]
pub struct NtFilter {
    pub flags: u32,
    pub family: u32,
}

/// One row: ("Struct.field.path", offset, size).
macro_rules! field {
    ($ty:ident, $($f:ident).+, $fty:ty) => {
        (
            concat!(stringify!($ty) $(, ".", stringify!($f))+),
            offset_of!($ty, $($f).+),
            size_of::<$fty>(),
        )
    };
}

/// The rows of the `sock` and `owner` sub-structs of a record type.
macro_rules! sock_and_owner {
    ($ty:ident) => {
        [
            field!($ty, sock.cookie, u64),
            field!($ty, sock.netns, u32),
            field!($ty, sock.sport, u16),
            field!($ty, sock.dport, u16),
            field!($ty, sock.family, u8),
            field!($ty, sock.saddr, [u8; 16]),
            field!($ty, sock.daddr, [u8; 16]),
            field!($ty, owner.cgroup, u64),
            field!($ty, owner.pid, u32),
            field!($ty, owner.tid, u32),
            field!($ty, owner.uid, u32),
            field!($ty, owner.known, u32),
            field!($ty, owner.comm, [u8; NT_COMM_LEN]),
        ]
    };
}

/// Every field the decoders read, and each record's total size as a ("Struct", 0, size) row.
pub fn describe() -> Vec<(&'static str, usize, usize)> {
    let mut rows = vec![
        field!(NtHead, kind, u16),
        field!(NtHead, size, u16),
        field!(NtHead, cpu, u16),
        field!(NtHead, ts, u64),
        field!(NtState, in_old_ns, u64),
        field!(NtState, old_state, u8),
        field!(NtState, new_state, u8),
        field!(NtConnect, latency_ns, u64),
        field!(NtConnect, err, i32),
        field!(NtAccept, queued_ns, u64),
        field!(NtClose, lifetime_ns, u64),
        field!(NtClose, tx_bytes, u64),
        field!(NtClose, rx_bytes, u64),
        field!(NtClose, segs_out, u32),
        field!(NtClose, segs_in, u32),
        field!(NtClose, retrans, u32),
        field!(NtClose, srtt_us, u32),
        field!(NtClose, old_state, u8),
        field!(NtFlow, tx_bytes, u64),
        field!(NtFlow, rx_bytes, u64),
        field!(NtFlow, uid, u32),
        field!(NtFlow, ino, u32),
        field!(NtFlow, rx_queue, u32),
        field!(NtFlow, tx_queue, u32),
        field!(NtFlow, srtt_us, u32),
        field!(NtFlow, retrans, u32),
        field!(NtFlow, segs_out, u32),
        field!(NtFlow, segs_in, u32),
        field!(NtFlow, state, u8),
        field!(NtUdp, lifetime_ns, u64),
        field!(NtUdp, tx_bytes, u64),
        field!(NtUdp, rx_bytes, u64),
        field!(NtUdp, tx_datagrams, u64),
        field!(NtUdp, rx_datagrams, u64),
        field!(NtUdp, drops, u32),
        field!(NtUdp, event, u8),
        field!(NtDns, len, u32),
        field!(NtDns, captured, u16),
        field!(NtDns, dir, u8),
        field!(NtDns, proto, u8),
        field!(NtUdpFlow, tx_bytes, u64),
        field!(NtUdpFlow, rx_bytes, u64),
        field!(NtUdpFlow, tx_datagrams, u64),
        field!(NtUdpFlow, rx_datagrams, u64),
        field!(NtUdpFlow, born_ns, u64),
        field!(NtUdpFlow, uid, u32),
        field!(NtUdpFlow, ino, u32),
        field!(NtUdpFlow, rx_queue, u32),
        field!(NtUdpFlow, tx_queue, u32),
        field!(NtUdpFlow, drops, u32),
        field!(NtUdpFlow, state, u8),
        field!(NtUdpPeer, cookie, u64),
        field!(NtUdpPeer, addr, [u8; 16]),
        field!(NtUdpPeer, port, u16),
        field!(NtUdpPeer, family, u8),
        field!(NtUdpPeerBytes, tx_bytes, u64),
        field!(NtUdpPeerBytes, rx_bytes, u64),
        field!(NtUdpPeerBytes, tx_datagrams, u64),
        field!(NtUdpPeerBytes, rx_datagrams, u64),
        field!(NtFilter, flags, u32),
        field!(NtFilter, family, u32),
        ("NtHead", 0, size_of::<NtHead>()),
        ("NtState", 0, size_of::<NtState>()),
        ("NtConnect", 0, size_of::<NtConnect>()),
        ("NtAccept", 0, size_of::<NtAccept>()),
        ("NtClose", 0, size_of::<NtClose>()),
        ("NtFlow", 0, size_of::<NtFlow>()),
        ("NtFilter", 0, size_of::<NtFilter>()),
        ("NtUdp", 0, size_of::<NtUdp>()),
        ("NtUdpFlow", 0, size_of::<NtUdpFlow>()),
        ("NtDns", 0, size_of::<NtDns>()),
        ("NtUdpPeer", 0, size_of::<NtUdpPeer>()),
        ("NtUdpPeerBytes", 0, size_of::<NtUdpPeerBytes>()),
    ];
    rows.extend(sock_and_owner!(NtHead));
    rows.extend(sock_and_owner!(NtFlow));
    rows.extend(sock_and_owner!(NtUdpFlow));
    rows
}
