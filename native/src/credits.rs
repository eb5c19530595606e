//! How many batches JavaScript holds at once, and the wait for one to come back.
//!
//! Node's threadsafe-function queue is drained in a loop of up to a thousand
//! calls before the event loop runs again, so a drain thread that always has
//! the next batch ready keeps timers and sockets waiting for seconds (a
//! /metrics scrape during max-rate churn took 5 s). Instead a batch is sent
//! only while fewer than MAX are out; JavaScript hands one back after it has
//! read it, from a later turn of its event loop, so every turn runs timers
//! and I/O between batches. Meanwhile records wait in the ring, which is
//! what it is for; what it cannot hold is counted as drops.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Batches out at once: one being read, one waiting.
const MAX: u32 = 2;

#[derive(Default)]
pub struct Credits {
    out: Mutex<u32>,
    back: Condvar,
    closed: Mutex<bool>,
}

impl Credits {
    /// Waits until a batch may go out, and counts it out; once closed, waits no more.
    pub fn take(&self) {
        let mut out = self.out.lock().unwrap();
        while *out >= MAX {
            if self.is_closed() {
                break; // stopping: what is left goes out as fast as JavaScript takes it
            }
            // woken by give() or close(); the timeout only guards against a lost wakeup
            out = self.back.wait_timeout(out, Duration::from_millis(50)).unwrap().0;
        }
        *out += 1;
    }

    /// A batch came back from JavaScript.
    pub fn give(&self) {
        let mut out = self.out.lock().unwrap();
        *out = out.saturating_sub(1);
        self.back.notify_one();
    }

    /// No more waiting: the tracer is stopping, and JavaScript may hand nothing back from now on.
    pub fn close(&self) {
        *self.closed.lock().unwrap() = true;
        self.back.notify_all();
    }

    fn is_closed(&self) -> bool {
        *self.closed.lock().unwrap()
    }
}
