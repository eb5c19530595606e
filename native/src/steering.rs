//! Reads the receive-steering maps (bpf/steering.bpf.c) on demand, through
//! duplicates of their fds, so JavaScript's thread can read them while the
//! drain thread owns the BPF object.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapMut};
use napi_derive::napi;

use crate::skel::types::{nt_steer_cell, nt_steer_cell_key, nt_steer_counter, nt_steer_cpu, nt_steer_reader, nt_steer_reads};
use crate::skel::NettraceMaps;

/// Segments of one socket processed on `cpu` while its reader last ran on `reader_cpu`.
#[napi(object)]
pub struct SteerCell {
    pub cookie: f64,
    pub ifindex: u32,
    pub cpu: u32,
    /// -1 before the socket's first read.
    pub reader_cpu: i32,
    pub segs: f64,
    pub packets: f64,
    /// The flow hash RPS/RFS steer by (0 if none).
    pub hash: u32,
}

/// Reads of one socket: where and by whom it was read last, and reads per CPU.
#[napi(object)]
pub struct SteerReader {
    pub cookie: f64,
    /// -1 if the reader entry was evicted but reads remain.
    pub cpu: i32,
    pub pid: u32,
    /// Reads that returned data, indexed by the CPU they ran on.
    pub reads: Vec<f64>,
    pub bytes: f64,
}

/// Segments of one flow hash, indexed by the CPU they entered the stack on (before RPS).
#[napi(object)]
pub struct SteerEntry {
    pub hash: u32,
    pub segs: Vec<f64>,
}

#[napi(object)]
pub struct NativeSteering {
    /// Possible CPUs: the length of every per-CPU array.
    pub cpus: u32,
    pub cells: Vec<SteerCell>,
    pub readers: Vec<SteerReader>,
    pub entries: Vec<SteerEntry>,
    /// Packets that entered the stack without a flow hash: not attributable to a flow.
    pub unhashed: f64,
    /// Entries the kernel's LRU maps pushed out to make room (their counts are lost).
    pub evictions: f64,
}

pub struct SteeringMaps {
    cells: MapHandle,
    readers: MapHandle,
    reads: MapHandle,
    entry: MapHandle,
    counts: MapHandle,
    cpus: usize,
    forgotten: AtomicU64,
    /// Evictions never go back: the highest count seen.
    evictions: AtomicU64,
}

// steer_counts' entries: the insert counters come first, up to the unhashed packets
const INSERT_COUNTERS: u32 = nt_steer_counter::STEER_UNHASHED.0;
const UNHASHED: u32 = nt_steer_counter::STEER_UNHASHED.0;
/// A reader CPU of NT_STEER_NO_CPU: the socket was not read yet.
const NO_CPU: u16 = nt_steer_cpu::NT_STEER_NO_CPU.0 as u16;

/// A key or value of a steering map as the skeleton's type of it (from_maps checked the sizes).
fn decode<T: Copy>(bytes: &[u8]) -> T {
    assert!(bytes.len() >= size_of::<T>(), "a steering map entry is shorter than its type");
    // SAFETY: long enough, and the skeleton's types of these keys and values are integers, valid for any bytes
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) }
}

impl SteeringMaps {
    pub fn from_maps(maps: &NettraceMaps) -> libbpf_rs::Result<SteeringMaps> {
        // read() decodes these as the skeleton's types: a map whose layout is not theirs must not be misread
        fn handle<K, V>(map: &MapMut) -> libbpf_rs::Result<MapHandle> {
            let (key, value) = (size_of::<K>() as u32, size_of::<V>() as u32);
            if (map.key_size(), map.value_size()) != (key, value) {
                return Err(libbpf_rs::Error::from(std::io::Error::other(format!(
                    "map {} has {}-byte keys and {}-byte values, not the {key} and {value} this addon reads",
                    map.name().to_string_lossy(), map.key_size(), map.value_size()))));
            }
            MapHandle::try_from(map)
        }
        Ok(SteeringMaps {
            cells: handle::<nt_steer_cell_key, nt_steer_cell>(&maps.steer_cells)?,
            readers: handle::<u64, nt_steer_reader>(&maps.steer_readers)?,
            reads: handle::<u64, nt_steer_reads>(&maps.steer_reads)?,
            entry: handle::<u32, u64>(&maps.steer_entry)?,
            counts: handle::<u32, u64>(&maps.steer_counts)?,
            cpus: libbpf_rs::num_possible_cpus().unwrap_or(1),
            forgotten: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    fn counter(&self, which: u32) -> u64 {
        match self.counts.lookup_percpu(&which.to_ne_bytes(), MapFlags::ANY) {
            Ok(Some(values)) => values.iter().map(|v| decode::<u64>(v)).sum(),
            _ => 0,
        }
    }

    fn percpu(&self, map: &MapHandle, key: &[u8]) -> Vec<Vec<u8>> {
        map.lookup_percpu(key, MapFlags::ANY).ok().flatten().unwrap_or_default()
    }

    pub fn read(&self) -> NativeSteering {
        // Counted before the walk: what is inserted during it may then be seen
        // live without being counted, which can only hide an eviction, never invent one.
        let inserted: u64 = (0..INSERT_COUNTERS).map(|c| self.counter(c)).sum();
        let mut live = 0u64;
        let mut cells = Vec::new();
        for key in self.cells.keys() {
            live += 1;
            let Ok(Some(v)) = self.cells.lookup(&key, MapFlags::ANY) else { continue };
            let (k, v): (nt_steer_cell_key, nt_steer_cell) = (decode(&key), decode(&v));
            cells.push(SteerCell {
                cookie: k.cookie as f64,
                ifindex: k.ifindex,
                cpu: k.cpu as u32,
                reader_cpu: if k.reader_cpu == NO_CPU { -1 } else { k.reader_cpu as i32 },
                segs: v.segs as f64,
                packets: v.packets as f64,
                hash: v.hash,
            });
        }
        let mut readers: HashMap<u64, SteerReader> = HashMap::new();
        let blank = |cookie: u64, cpus: usize| SteerReader { cookie: cookie as f64, cpu: -1, pid: 0, reads: vec![0.0; cpus], bytes: 0.0 };
        for key in self.readers.keys() {
            live += 1;
            let Ok(Some(v)) = self.readers.lookup(&key, MapFlags::ANY) else { continue };
            let (cookie, v): (u64, nt_steer_reader) = (decode(&key), decode(&v));
            let r = readers.entry(cookie).or_insert_with(|| blank(cookie, self.cpus));
            r.cpu = v.cpu as i32;
            r.pid = v.pid;
        }
        for key in self.reads.keys() {
            live += 1;
            let cookie: u64 = decode(&key);
            let per_cpu = self.percpu(&self.reads, &key);
            let r = readers.entry(cookie).or_insert_with(|| blank(cookie, self.cpus));
            for (cpu, v) in per_cpu.iter().enumerate().take(self.cpus) {
                let v: nt_steer_reads = decode(v);
                r.reads[cpu] = v.reads as f64;
                r.bytes += v.bytes as f64;
            }
        }
        let mut entries = Vec::new();
        for key in self.entry.keys() {
            live += 1;
            let per_cpu = self.percpu(&self.entry, &key);
            entries.push(SteerEntry { hash: decode(&key), segs: per_cpu.iter().map(|v| decode::<u64>(v) as f64).collect() });
        }
        let now = inserted.saturating_sub(self.forgotten.load(Ordering::Relaxed)).saturating_sub(live);
        let evictions = self.evictions.fetch_max(now, Ordering::Relaxed).max(now);
        NativeSteering {
            cpus: self.cpus as u32,
            cells,
            readers: readers.into_values().collect(),
            entries,
            unhashed: self.counter(UNHASHED) as f64,
            evictions: evictions as f64,
        }
    }

    /// Deletes what the maps hold of these sockets (closed, already reported) and of their flow hashes.
    pub fn forget(&self, cookies: &[u64]) {
        let mut deleted = 0u64;
        let mut hashes = Vec::new();
        let cell_keys: Vec<Vec<u8>> = self.cells.keys().filter(|k| cookies.contains(&decode::<nt_steer_cell_key>(k).cookie)).collect();
        for key in cell_keys {
            if let Ok(Some(v)) = self.cells.lookup(&key, MapFlags::ANY) {
                hashes.push(decode::<nt_steer_cell>(&v).hash);
            }
            deleted += self.cells.delete(&key).is_ok() as u64;
        }
        for cookie in cookies {
            let key = cookie.to_ne_bytes();
            deleted += self.readers.delete(&key).is_ok() as u64;
            deleted += self.reads.delete(&key).is_ok() as u64;
        }
        hashes.sort_unstable();
        hashes.dedup();
        for hash in hashes.into_iter().filter(|h| *h != 0) {
            deleted += self.entry.delete(&hash.to_ne_bytes()).is_ok() as u64;
        }
        self.forgotten.fetch_add(deleted, Ordering::Relaxed);
    }
}
