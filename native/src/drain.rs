//! The drain thread: wakes on a timer (or when the kernel says the ring is a
//! quarter full), moves whole records into a batch and hands the batch to
//! JavaScript in one call. It never waits on JavaScript without bound: the
//! call queue is short and blocking, so a slow consumer stalls this thread,
//! the ring fills, and the kernel counts what it cannot take.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libbpf_rs::Link;

use crate::batch::{Batch, Pool};
use crate::bpf::Bpf;
use crate::maps::{prog_ids, read_evictions, read_hook_runs, read_percpu_sum};
use crate::ring::Ring;
use crate::skel::types::dns_buf;

/// More than any record takes. The largest is a DNS record, struct nt_dns and
/// up to NT_DNS_MAX payload bytes: struct dns_buf, which the kernel builds it in.
const MAX_RECORD: usize = 4096;
const _: () = assert!(std::mem::size_of::<dns_buf>() <= MAX_RECORD);

/// By default a batch goes out once it holds this much, even before the timer.
pub const DEFAULT_BATCH_BYTES: u32 = 4 << 20;

#[derive(Default)]
pub struct Counters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// The ring's producer position: bytes the kernel has put in it.
    pub produced: AtomicU64,
    pub batches: AtomicU64,
    pub drops: AtomicU64,
    /// Drops of each record kind, indexed by kind - 1.
    pub drops_by_kind: [AtomicU64; 6],
    pub missed: AtomicU64,
    /// The kernel's run counts of the hooks (kernel.bpf_stats_enabled), final once tracing stopped.
    pub state_runs: AtomicU64,
    pub accept_runs: AtomicU64,
    pub evictions: AtomicU64,
}

/// Hands a batch to JavaScript; `true` marks the last one, sent after every
/// program is detached and every map closed. Returns false once JavaScript
/// has gone away.
pub trait Sink: Send + 'static {
    fn send(&self, batch: Batch, last: bool) -> bool;
}

pub struct Drain {
    wake: OwnedFd,
}

impl Drain {
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(bpf: Bpf, links: Vec<Link>, ring_bytes: u32, max_sockets: u32, flush: Duration, batch_bytes: u32,
                 counters: Arc<Counters>, sink: impl Sink) -> std::io::Result<Drain> {
        let wake = eventfd()?;
        let wake_thread = wake.try_clone()?;
        let ring_fd = bpf.maps().events.as_fd().as_raw_fd();
        let ring = Ring::new(ring_fd, ring_bytes as usize)?;
        let epoll = epoll_with(&wake_thread, ring_fd)?;
        std::thread::Builder::new()
            .name("nettrace-drain".into())
            .spawn(move || run(bpf, links, ring, epoll, wake_thread, max_sockets, flush, batch_bytes as usize, counters, sink))?;
        Ok(Drain { wake })
    }

    /// Asks the thread to detach, drain what is left and send the last batch.
    pub fn stop(&self) {
        let one: u64 = 1;
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop();
    }
}

#[allow(clippy::too_many_arguments)]
fn run(bpf: Bpf, links: Vec<Link>, mut ring: Ring, epoll: OwnedFd, wake: OwnedFd, max_sockets: u32, flush: Duration,
       max_batch: usize, counters: Arc<Counters>, sink: impl Sink) {
    let pool = Arc::new(Pool::default());
    let mut deadline = Instant::now() + flush;
    let mut last_evictions = Instant::now();
    let mut alive = true;
    loop {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // rounded up: a timeout rounded down to 0 ms would spin until the deadline
        let timeout_ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), events.as_mut_ptr(), 2, timeout_ms) };
        if events[..n.max(0) as usize].iter().any(|e| e.u64 == WAKE_TOKEN) {
            break;
        }
        let ring_full = n > 0;
        if !ring_full && Instant::now() < deadline {
            continue; // EINTR or an early return: keep to the timer
        }
        deadline = Instant::now() + flush;
        if alive {
            alive = drain_all(&mut ring, &pool, max_batch, &counters, &sink, &bpf);
        }
        if last_evictions.elapsed() >= Duration::from_secs(1) {
            read_evictions_now(&counters, &bpf, max_sockets);
            last_evictions = Instant::now();
        }
        if !alive {
            break; // JavaScript went away: stop tracing
        }
    }
    let _ = wake;
    // Detach first so nothing new arrives, then take what is left.
    drop(links);
    let mut last = Batch::with_capacity(0);
    if alive {
        drain_all(&mut ring, &pool, max_batch, &counters, &sink, &bpf);
        let n = ring.drain(&mut last, usize::MAX);
        counters.produced.store(ring.produced(), Ordering::Relaxed);
        count(&counters, n, last.len());
    }
    read_losses(&counters, &bpf);
    read_evictions_now(&counters, &bpf, max_sockets);
    let programs = prog_ids(bpf.object());
    drop(ring);
    drop(bpf);
    wait_gone(&programs);
    if alive {
        counters.batches.fetch_add(1, Ordering::Relaxed);
        sink.send(last, true);
    }
}

/// Sends full batches while the ring has more than one batch's worth.
fn drain_all(ring: &mut Ring, pool: &Arc<Pool>, max_batch: usize, counters: &Counters, sink: &impl Sink, bpf: &Bpf) -> bool {
    loop {
        // address space for a full batch and the record that crosses max_batch: only pages written are backed
        let mut batch = pool.take(max_batch + MAX_RECORD);
        let n = ring.drain(&mut batch, max_batch);
        counters.produced.store(ring.produced(), Ordering::Relaxed);
        read_losses(counters, bpf);
        if n == 0 {
            return true;
        }
        let full = batch.len() >= max_batch;
        count(counters, n, batch.len());
        counters.batches.fetch_add(1, Ordering::Relaxed);
        if !sink.send(batch, false) {
            return false;
        }
        if !full {
            return true;
        }
    }
}

fn read_losses(counters: &Counters, bpf: &Bpf) {
    counters.drops.store(read_percpu_sum(&bpf.maps().drops, 0), Ordering::Relaxed);
    for (kind, n) in counters.drops_by_kind.iter().enumerate() {
        n.store(read_percpu_sum(&bpf.maps().drops, kind as u32 + 1), Ordering::Relaxed);
    }
    let runs = read_hook_runs(bpf.object());
    counters.missed.store(runs.missed, Ordering::Relaxed);
    counters.state_runs.store(runs.state, Ordering::Relaxed);
    counters.accept_runs.store(runs.accept, Ordering::Relaxed);
}

/// Evictions need a walk of the socket map once it is near full: at most once a second.
fn read_evictions_now(counters: &Counters, bpf: &Bpf, max_sockets: u32) {
    if let Some(n) = read_evictions(bpf.maps(), max_sockets) {
        counters.evictions.store(n, Ordering::Relaxed);
    }
}

/// The kernel frees a tracepoint link's program only after an RCU grace
/// period, which a loaded machine stretches: wait (up to 2 s) so that when
/// the last batch arrives, nothing of this tracer is left in the kernel.
fn wait_gone(programs: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let alive = |id: u32| {
        let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        fd >= 0
    };
    while programs.iter().any(|&id| alive(id)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(counters: &Counters, records: u64, bytes: usize) {
    counters.records.fetch_add(records, Ordering::Relaxed);
    counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
}

const WAKE_TOKEN: u64 = 1;
const RING_TOKEN: u64 = 2;

fn eventfd() -> std::io::Result<OwnedFd> {
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Edge-triggered on the ring: the kernel wakes it only when the BPF side
/// forces a wakeup (ring a quarter full), not for every record.
fn epoll_with(wake: &OwnedFd, ring_fd: i32) -> std::io::Result<OwnedFd> {
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for (fd, token, flags) in [
        (wake.as_raw_fd(), WAKE_TOKEN, libc::EPOLLIN as u32),
        (ring_fd, RING_TOKEN, (libc::EPOLLIN | libc::EPOLLET) as u32),
    ] {
        let mut ev = libc::epoll_event { events: flags, u64: token };
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(ep)
}
