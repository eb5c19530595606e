//! The kernel's BPF statistics of programs, by id: how often each ran and for
//! how long (counted only while kernel.bpf_stats_enabled is 1).

use std::mem::{size_of, zeroed};
use std::os::fd::{FromRawFd, OwnedFd, AsRawFd};

use libbpf_rs::libbpf_sys;
use napi_derive::napi;

#[napi(object)]
pub struct ProgStats {
    pub id: u32,
    pub name: String,
    pub run_cnt: f64,
    pub run_time_ns: f64,
    pub recursion_misses: f64,
}

/// Statistics of each program still loaded among `ids` (a vanished one is left out).
#[napi]
pub fn bpf_prog_stats(ids: Vec<u32>) -> Vec<ProgStats> {
    ids.into_iter().filter_map(prog_stats).collect()
}

fn prog_stats(id: u32) -> Option<ProgStats> {
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return None;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut info: libbpf_sys::bpf_prog_info = unsafe { zeroed() };
    let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
    if unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } != 0 {
        return None;
    }
    let name = info.name.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect();
    Some(ProgStats {
        id,
        name,
        run_cnt: info.run_cnt as f64,
        run_time_ns: info.run_time_ns as f64,
        recursion_misses: info.recursion_misses as f64,
    })
}
