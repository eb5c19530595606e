//! A BPF ring buffer consumer over the map's own mmap. libbpf's ring_buffer
//! invokes a callback per record; here records are copied straight into the
//! batch that goes to JavaScript, and the consumer position is published once
//! per drain.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::batch::Batch;

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HDR: u64 = 8;

pub struct Ring {
    consumer: *mut u8,
    producer: *mut u8,
    page: usize,
    size: usize,
}

// The mappings are only touched by the one thread that owns the Ring.
unsafe impl Send for Ring {}

impl Ring {
    pub fn new(fd: RawFd, size: usize) -> io::Result<Ring> {
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let consumer = unsafe {
            libc::mmap(std::ptr::null_mut(), page, libc::PROT_READ | libc::PROT_WRITE,
                       libc::MAP_SHARED, fd, 0)
        };
        if consumer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // The data area is mapped twice in a row, so a record that wraps is contiguous.
        let producer = unsafe {
            libc::mmap(std::ptr::null_mut(), page + 2 * size, libc::PROT_READ, libc::MAP_SHARED,
                       fd, page as libc::off_t)
        };
        if producer == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            unsafe { libc::munmap(consumer, page) };
            return Err(err);
        }
        Ok(Ring { consumer: consumer.cast(), producer: producer.cast(), page, size })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        unsafe { &*(self.consumer as *const AtomicU64) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        unsafe { &*(self.producer as *const AtomicU64) }
    }

    /// Bytes the kernel has put in the ring so far (its producer position).
    pub fn produced(&self) -> u64 {
        self.producer_pos().load(Ordering::Acquire)
    }

    /// Appends whole committed records to `out` until the ring is empty or `out`
    /// holds at least `max_bytes`. Returns the number of records appended.
    pub fn drain(&mut self, out: &mut Batch, max_bytes: usize) -> u64 {
        let mask = self.size as u64 - 1;
        let data = unsafe { self.producer.add(self.page) };
        let mut cons = self.consumer_pos().load(Ordering::Relaxed);
        let prod = self.producer_pos().load(Ordering::Acquire);
        let mut records = 0;
        while cons < prod && out.len() < max_bytes {
            let rec = unsafe { data.add((cons & mask) as usize) };
            let len_word = unsafe { &*(rec as *const AtomicU32) }.load(Ordering::Acquire);
            if len_word & BUSY != 0 {
                break; // reserved but not yet submitted: take it next time
            }
            let len = (len_word & !(BUSY | DISCARD)) as usize;
            if len_word & DISCARD == 0 {
                let body = unsafe { std::slice::from_raw_parts(rec.add(HDR as usize), len) };
                out.extend_from_slice(body);
                records += 1;
            }
            cons += (HDR + len as u64 + 7) & !7;
        }
        self.consumer_pos().store(cons, Ordering::Release);
        records
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast(), self.page + 2 * self.size);
        }
    }
}
