//! The record kinds a caller can ask for, as the load-time setting `nt_events`
//! takes them (load.rs writes it, with the others, through the skeleton's
//! `types::rodata` before load; after load the kernel holds them read-only and
//! the verifier prunes what they turn off).

use crate::skel::types::nt_kind;

/// Record kinds by the names callers use, numbered by `enum nt_kind` of bpf/nettrace.h.
pub const EVENT_KINDS: &[(&str, nt_kind)] = &[
    ("state", nt_kind::NT_STATE),
    ("connect", nt_kind::NT_CONNECT),
    ("accept", nt_kind::NT_ACCEPT),
    ("close", nt_kind::NT_CLOSE),
    ("udp", nt_kind::NT_UDP),
    ("dns", nt_kind::NT_DNS),
];

/// Kinds sent unless the caller names its own: all but dns, whose hooks run per packet (asked for, like steering).
pub fn default_events() -> u32 {
    EVENT_KINDS.iter().filter(|(_, k)| *k != nt_kind::NT_DNS).fold(0, |m, (_, k)| m | event_bit(*k))
}

/// A kind's bit in `nt_events` (NT_EVENT in bpf/nettrace.h).
pub fn event_bit(kind: nt_kind) -> u32 {
    1 << kind.0
}
