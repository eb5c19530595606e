//! A batch of records on its way to JavaScript, and its handing over.
//!
//! Each batch is its own anonymous mapping: freeing one gives its pages back
//! to the system at once. From the heap, batches of varying sizes made on the
//! drain thread and freed on the JavaScript thread left the allocator holding
//! hundreds of MiB at max-rate churn.
//!
//! JavaScript gets the batch as a Buffer over that memory, without copying,
//! and V8 is told how much the batch holds and when it is freed: otherwise it
//! collects spent batches only when its own heap fills, and the flow table
//! makes so little garbage that spent batches would wait a long time.
//!
//! Spent batches go back to a small pool and are written again: a fresh
//! mapping costs a page fault and a zeroed page per 4 KiB written, which at
//! max-rate churn was a fifth of the tracer's CPU.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;

/// Spent batches kept for reuse; more than this many spent at once are unmapped.
const POOLED: usize = 8;

#[derive(Default)]
pub struct Pool {
    spare: Mutex<Vec<Batch>>,
}

impl Pool {
    /// A batch of at least `cap` bytes, reused when one is spare.
    pub fn take(self: &Arc<Pool>, cap: usize) -> Batch {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        let mut b = match spare {
            Some(b) if b.cap >= cap => b,
            _ => Batch::with_capacity(cap),
        };
        b.pool = Some(self.clone());
        b
    }
}

pub struct Batch {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    /// Where it goes back to once spent.
    pool: Option<Arc<Pool>>,
}

// Only ever owned by one thread at a time: the drain thread, then JavaScript's.
unsafe impl Send for Batch {}

impl Batch {
    /// Address space for `cap` bytes; pages are only backed once written.
    pub fn with_capacity(cap: usize) -> Batch {
        let mut b = Batch { ptr: std::ptr::null_mut(), len: 0, cap: 0, pool: None };
        if cap > 0 {
            b.grow(cap);
        }
        b
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.cap {
            self.grow((self.len + bytes.len()).max(2 * self.cap));
        }
        // SAFETY: the mapping holds cap >= len + bytes.len() bytes, and bytes is not inside it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    fn grow(&mut self, want: usize) {
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let cap = want.div_ceil(page) * page;
        let p = unsafe {
            if self.ptr.is_null() {
                libc::mmap(std::ptr::null_mut(), cap, libc::PROT_READ | libc::PROT_WRITE,
                           libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
            } else {
                libc::mremap(self.ptr.cast(), self.cap, cap, libc::MREMAP_MAYMOVE)
            }
        };
        if p == libc::MAP_FAILED {
            panic!("cannot map {cap} bytes for a batch: {}", std::io::Error::last_os_error());
        }
        self.ptr = p.cast();
        self.cap = cap;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            if let Ok(mut spare) = pool.spare.lock() {
                if spare.len() < POOLED && !self.ptr.is_null() {
                    // the mapping moves to a new Batch in the pool; this one keeps nothing to unmap
                    spare.push(Batch { ptr: self.ptr, len: 0, cap: self.cap, pool: None });
                    self.ptr = std::ptr::null_mut();
                }
            }
        }
        if !self.ptr.is_null() {
            unsafe { libc::munmap(self.ptr.cast(), self.cap) };
        }
    }
}

pub fn to_js(env: &Env, batch: Batch) -> Result<BufferSlice<'static>> {
    if batch.is_empty() {
        return BufferSlice::from_data(env, Vec::new());
    }
    let (ptr, len) = (batch.ptr, batch.len);
    env.adjust_external_memory(len as i64)?;
    // SAFETY: the Buffer views the batch's mapping, which lives until the finalizer drops the batch.
    unsafe {
        BufferSlice::from_external(env, ptr, len, batch, |env, batch| {
            let len = batch.len();
            drop(batch);
            let _ = env.adjust_external_memory(-(len as i64));
        })
    }
}
