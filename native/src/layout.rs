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

/// Every field the decoders read, and each record's total size as a ("Struct", 0, size) row.
pub fn describe() -> Vec<(&'static str, usize, usize)> {
    vec![
        field!(NtHead, kind, u16),
        field!(NtHead, size, u16),
        field!(NtHead, cpu, u16),
        field!(NtHead, ts, u64),
        field!(NtHead, sock.cookie, u64),
        field!(NtHead, sock.netns, u32),
        field!(NtHead, sock.sport, u16),
        field!(NtHead, sock.dport, u16),
        field!(NtHead, sock.family, u8),
        field!(NtHead, sock.saddr, [u8; 16]),
        field!(NtHead, sock.daddr, [u8; 16]),
        field!(NtHead, owner.cgroup, u64),
        field!(NtHead, owner.pid, u32),
        field!(NtHead, owner.tid, u32),
        field!(NtHead, owner.uid, u32),
        field!(NtHead, owner.known, u32),
        field!(NtHead, owner.comm, [u8; NT_COMM_LEN]),
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
        field!(NtFlow, sock.cookie, u64),
        field!(NtFlow, sock.netns, u32),
        field!(NtFlow, sock.sport, u16),
        field!(NtFlow, sock.dport, u16),
        field!(NtFlow, sock.family, u8),
        field!(NtFlow, sock.saddr, [u8; 16]),
        field!(NtFlow, sock.daddr, [u8; 16]),
        field!(NtFlow, owner.cgroup, u64),
        field!(NtFlow, owner.pid, u32),
        field!(NtFlow, owner.tid, u32),
        field!(NtFlow, owner.uid, u32),
        field!(NtFlow, owner.known, u32),
        field!(NtFlow, owner.comm, [u8; NT_COMM_LEN]),
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
        field!(NtFilter, flags, u32),
        field!(NtFilter, family, u32),
        ("NtHead", 0, size_of::<NtHead>()),
        ("NtState", 0, size_of::<NtState>()),
        ("NtConnect", 0, size_of::<NtConnect>()),
        ("NtAccept", 0, size_of::<NtAccept>()),
        ("NtClose", 0, size_of::<NtClose>()),
        ("NtFlow", 0, size_of::<NtFlow>()),
        ("NtFilter", 0, size_of::<NtFilter>()),
    ]
}
