//! What the caller asked of the tracer, as the loader takes it.

use crate::skel::types::nt_kind;

/// Necessary conditions of the user's filter that the kernel checks before a record is sent.
#[derive(Default)]
pub struct KernelFilter {
    pub family: Option<u32>,
    pub pids: Option<Vec<u32>>,
    pub ports: Option<Vec<u16>>,
    /// Inode of the one network namespace whose sockets are wanted.
    pub netns: Option<u32>,
    /// cgroup v2 ids: the owner's cgroup is one of these.
    pub cgroups: Option<Vec<u64>>,
}

pub struct Options {
    pub kernel_filter: KernelFilter,
    pub ring_bytes: u32,
    pub max_sockets: u32,
    /// Hooks ("state", "accept", "snapshot") or kernel features ("fexit") the caller turned off.
    pub disabled: Vec<String>,
    /// Attach the per-packet receive-steering hooks (steering.bpf.c).
    pub steering: bool,
    /// `1 << kind` of each record kind that goes to the ring (settings::EVENT_KINDS).
    pub events: u32,
    /// Keep the kernel's socket table (owners, lifetimes, byte bases), which
    /// connect, accept and close records and the snapshots' owners need.
    pub track: bool,
    /// Count every TCP transition in the kernel, per (old, new) state.
    pub count_states: bool,
}

impl Options {
    pub fn wants(&self, kind: nt_kind) -> bool {
        self.events & crate::settings::event_bit(kind) != 0
    }
}
