//! Readers of the loaded object's maps and programs: counters summed over
//! CPUs, the kernel's run counts, socket table evictions.

use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapMut, Object, Program};

use crate::errors::{Code, NtError};
use crate::skel::NettraceMaps;

/// Sum over CPUs of entry `key` of a per-CPU u64 array.
pub fn read_percpu_sum(map: &impl MapCore, key: u32) -> u64 {
    match map.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY) {
        Ok(Some(values)) => values.iter().filter_map(|v| v.get(..8)).map(|b| u64::from_ne_bytes(b.try_into().unwrap())).sum(),
        _ => 0,
    }
}

/// What the kernel counts of the hooks' runs, summed over programs.
#[derive(Default)]
pub struct HookRuns {
    /// Runs the kernel skipped because the program was already running on
    /// that CPU (a softirq interrupting it): records that never existed, so
    /// they are counted beside the ring's drops.
    pub missed: u64,
    /// Runs of the state hook (counted only while kernel.bpf_stats_enabled is on).
    pub state: u64,
    /// Runs of the accept hook(s), likewise.
    pub accept: u64,
}

pub fn read_hook_runs(object: &Object) -> HookRuns {
    let mut runs = HookRuns::default();
    for p in object.progs().filter(|p| p.autoload()) {
        let Some(info) = prog_info(&p) else { continue };
        runs.missed += info.recursion_misses;
        let name = p.name().to_string_lossy();
        if name == "on_state" {
            runs.state += info.run_cnt;
        } else if name.starts_with("on_accept") {
            runs.accept += info.run_cnt;
        }
    }
    runs
}

/// The ids of the object's loaded programs, as the kernel numbers them.
pub fn prog_ids(object: &Object) -> Vec<u32> {
    object.progs().filter(|p| p.autoload()).filter_map(|p| prog_info(&p)).map(|info| info.id).collect()
}

/// The kernel's account of a loaded program: its id and run counts.
fn prog_info(p: &Program) -> Option<libbpf_sys::bpf_prog_info> {
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    let ret = unsafe {
        libbpf_sys::bpf_obj_get_info_by_fd(p.as_fd().as_raw_fd(), (&mut info as *mut libbpf_sys::bpf_prog_info).cast(), &mut len)
    };
    (ret == 0).then_some(info)
}

/// Entries of the socks map the kernel's LRU pushed out: inserted - deleted - live.
/// Counting live entries walks the map, so it is done only once the map could be
/// full: the LRU keeps up to 128 free entries per CPU aside and evicts before
/// the last ones are used.
pub fn read_evictions(maps: &NettraceMaps, max_sockets: u32) -> Option<u64> {
    let inserted = read_percpu_sum(&maps.sock_counts, 0);
    let deleted = read_percpu_sum(&maps.sock_counts, 1);
    let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
    if inserted.saturating_sub(deleted) + 128 * cpus < max_sockets as u64 {
        return Some(0);
    }
    let live = maps.socks.keys().count() as u64;
    Some(inserted.saturating_sub(deleted).saturating_sub(live))
}

/// A map of the loaded object, held apart from it: read from JavaScript's thread while the drain owns the object.
pub fn map_handle(map: &MapMut) -> Result<MapHandle, NtError> {
    MapHandle::try_from(map)
        .map_err(|e| NtError::new(Code::Kernel, format!("cannot keep the {} map: {e}", map.name().to_string_lossy())))
}

/// Every entry of a per-CPU u64 array, summed over CPUs, in key order.
pub fn percpu_sums(map: &MapHandle) -> Vec<u64> {
    (0..map.max_entries()).map(|key| read_percpu_sum(map, key)).collect()
}
