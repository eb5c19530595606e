//! What the client and acceptor threads share with the run that started them:
//! its clock, its stop flag, its counters and one latency histogram per client.
//! Apart from run.rs and load.rs so that neither imports the other.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Mutex;
use std::time::Instant;

use crate::histogram::Histogram;

#[derive(Default)]
pub struct Counters {
    pub conns: AtomicU64,
    pub connected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub errors: AtomicU64,
    pub accepted: AtomicU64,
    pub cpu_ns: AtomicU64,
    pub clients_left: AtomicUsize,
    /// When the last client finished, ns after the start.
    pub ended_ns: AtomicU64,
}

pub struct Shared {
    pub began: Instant,
    pub stop: AtomicBool,
    pub counters: Counters,
    /// One per client thread, so recording never contends.
    pub latencies: Vec<Mutex<Histogram>>,
}
