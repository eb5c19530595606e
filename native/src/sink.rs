//! Where the drain's batches go: to JavaScript, through a thread of their own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use crate::batch::Batch;
use crate::credits::Credits;
use crate::drain::Sink;

pub type BatchFn = ThreadsafeFunction<(Batch, bool), (), (BufferSlice<'static>, bool), Status, false, false, 4>;

/**
 * Hands batches to JavaScript from a thread of its own, so that the drain
 * thread goes on emptying the ring while JavaScript holds its two batches
 * (a `top` report or a scrape can take it hundreds of milliseconds): the ring
 * holds half a second of max-rate churn, this queue up to QUEUED batches more.
 * Past that the drain waits, the ring fills and the kernel counts the drops.
 */
pub struct JsSink {
    queue: std::sync::mpsc::SyncSender<(Batch, bool)>,
    gone: Arc<AtomicBool>,
}

/// Batches drained and waiting for JavaScript to take them.
const QUEUED: usize = 64;

impl JsSink {
    pub fn start(call: BatchFn, credits: Arc<Credits>) -> std::io::Result<JsSink> {
        let (queue, waiting) = std::sync::mpsc::sync_channel::<(Batch, bool)>(QUEUED);
        let gone = Arc::new(AtomicBool::new(false));
        let flag = gone.clone();
        std::thread::Builder::new().name("nettrace-send".into()).spawn(move || {
            for (batch, last) in waiting {
                // the last batch goes whatever is out: nothing follows it to wait for
                if !last {
                    credits.take();
                }
                // blocking on a 4-deep queue, which holds at most two batches and the last
                if call.call((batch, last), ThreadsafeFunctionCallMode::Blocking) != Status::Ok {
                    flag.store(true, Ordering::Relaxed);
                }
            }
        })?;
        Ok(JsSink { queue, gone })
    }
}

impl Sink for JsSink {
    fn send(&self, batch: Batch, last: bool) -> bool {
        !self.gone.load(Ordering::Relaxed) && self.queue.send((batch, last)).is_ok()
    }
}
