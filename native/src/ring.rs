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
        let data = unsafe { self.producer.add(self.page) };
        let cons = self.consumer_pos().load(Ordering::Relaxed);
        let prod = self.producer_pos().load(Ordering::Acquire);
        // SAFETY: the data area is mapped twice in a row, so every record from `cons` to `prod` is contiguous
        let (cons, records) = unsafe { take(data, self.size as u64 - 1, cons, prod, out, max_bytes) };
        self.consumer_pos().store(cons, Ordering::Release);
        records
    }
}

/// Copies the bodies of the committed records between the positions `cons`
/// and `prod` of a ring whose data area (`mask` + 1 bytes, mapped twice in a
/// row) starts at `data`, as the kernel frames them: an 8-byte header (the
/// length, with BUSY while reserved and DISCARD once dropped, then the page
/// offset), the body, padding to 8 bytes. Returns the consumer position to
/// publish and the number of records appended.
///
/// SAFETY: `data` must be readable for 2 * (mask + 1) bytes, 8-byte aligned.
unsafe fn take(data: *const u8, mask: u64, mut cons: u64, prod: u64, out: &mut Batch, max_bytes: usize) -> (u64, u64) {
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
    (cons, records)
}

impl Drop for Ring {
    fn drop(&mut self) {
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast(), self.page + 2 * self.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: usize = 64;

    /// A ring's data area as the kernel maps it for a consumer: SIZE bytes, then the same SIZE bytes again.
    struct Image(Vec<u64>);

    impl Image {
        fn new() -> Image {
            Image(vec![0; 2 * SIZE / 8])
        }

        /// Writes a record as bpf_ringbuf_submit leaves it at position `pos`; returns the next record's position.
        fn record(&mut self, pos: u64, len_word: u32, body: &[u8]) -> u64 {
            let mut framed = len_word.to_ne_bytes().to_vec();
            framed.extend_from_slice(&(pos as u32 / 8).to_ne_bytes()); // the page offset, which consumers ignore
            framed.extend_from_slice(body);
            framed.resize((framed.len() + 7) & !7, 0);
            let bytes = unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), 2 * SIZE) };
            for (i, b) in framed.iter().enumerate() {
                let at = (pos as usize + i) % SIZE;
                bytes[at] = *b;
                bytes[at + SIZE] = *b;
            }
            pos + framed.len() as u64
        }

        fn take(&self, cons: u64, prod: u64, max_bytes: usize) -> (u64, u64, Vec<u8>) {
            let mut out = Batch::with_capacity(4096);
            let (cons, n) = unsafe { take(self.0.as_ptr().cast(), SIZE as u64 - 1, cons, prod, &mut out, max_bytes) };
            (cons, n, out.as_slice().to_vec())
        }
    }

    #[test]
    fn committed_records_are_taken_whole_and_the_padding_skipped() {
        let mut ring = Image::new();
        let second = ring.record(0, 5, b"hello");
        let prod = ring.record(second, 8, b"12345678");
        assert_eq!((second, prod), (16, 32));
        assert_eq!(ring.take(0, prod, usize::MAX), (32, 2, b"hello12345678".to_vec()));
    }

    #[test]
    fn a_reserved_record_stops_the_drain_before_it() {
        let mut ring = Image::new();
        let busy = ring.record(0, 3, b"one");
        let prod = ring.record(busy, BUSY | 3, b"two");
        assert_eq!(ring.take(0, prod, usize::MAX), (busy, 1, b"one".to_vec()));
    }

    #[test]
    fn a_discarded_record_is_passed_over() {
        let mut ring = Image::new();
        let next = ring.record(0, DISCARD | 4, b"gone");
        let prod = ring.record(next, 4, b"kept");
        assert_eq!(ring.take(0, prod, usize::MAX), (prod, 1, b"kept".to_vec()));
    }

    #[test]
    fn a_record_across_the_end_of_the_ring_is_read_through_the_second_mapping() {
        let mut ring = Image::new();
        // consumer and producer far into the ring's life: the record starts 16 bytes before the end and wraps
        let start = 10 * SIZE as u64 + 48;
        let body: Vec<u8> = (0..20).collect();
        let prod = ring.record(start, body.len() as u32, &body);
        assert_eq!(ring.take(start, prod, usize::MAX), (start + 32, 1, body));
    }

    #[test]
    fn a_full_batch_ends_the_drain_after_the_record_that_filled_it() {
        let mut ring = Image::new();
        let second = ring.record(0, 6, b"first!");
        let third = ring.record(second, 6, b"second");
        let prod = ring.record(third, 5, b"third");
        assert_eq!(ring.take(0, prod, 8), (third, 2, b"first!second".to_vec()));
        assert_eq!(ring.take(third, prod, 8), (prod, 1, b"third".to_vec()));
    }
}
