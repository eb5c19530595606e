//! The two ends of every connection: a client thread's loop of connections
//! and an acceptor's loop of accepted ones (the lifecycle is in lib.rs).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::shared::Shared;
use crate::sockets::{read_full, set_timeouts, setsockopt, sockaddr, socket, write_full};
use crate::threads::thread_cpu_ns;

/// One client thread: one connection at a time, on its share of the rate, until the deadline or a stop.
pub struct Client {
    pub id: usize,
    pub server: SocketAddr,
    pub rst: bool,
    pub payload: u32,
    pub gap: Option<Duration>,
    pub deadline: Instant,
}

impl Client {
    pub fn run(&self, shared: &Shared) {
        let c = &shared.counters;
        let mut buf = vec![b'x'; self.payload as usize];
        let mut next = Instant::now();
        while !shared.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline {
            if let Some(gap) = self.gap {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                // behind schedule: catch up, but never by a burst longer than one gap
                next = next.max(Instant::now() - gap) + gap;
            }
            match self.connection(&mut buf, shared) {
                Ok(()) => c.conns.fetch_add(1, Ordering::Relaxed),
                Err(_) => c.errors.fetch_add(1, Ordering::Relaxed),
            };
        }
        c.cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
        c.ended_ns.fetch_max(shared.began.elapsed().as_nanos() as u64, Ordering::SeqCst);
        c.clients_left.fetch_sub(1, Ordering::SeqCst);
    }

    fn connection(&self, buf: &mut [u8], shared: &Shared) -> std::result::Result<(), ()> {
        let c = &shared.counters;
        let fd = socket(&self.server).map_err(|_| ())?;
        set_timeouts(&fd);
        if self.rst {
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger);
        }
        let (addr, len) = sockaddr(&self.server);
        let t0 = Instant::now();
        let r = unsafe { libc::connect(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, len) };
        let latency = t0.elapsed();
        if r != 0 {
            c.connect_failed.fetch_add(1, Ordering::Relaxed);
            return Err(());
        }
        c.connected.fetch_add(1, Ordering::Relaxed);
        shared.latencies[self.id].lock().unwrap().record(latency.as_nanos() as u64);
        if !buf.is_empty() {
            write_full(&fd, buf)?;
            read_full(&fd, buf)?;
        }
        // the server's FIN: read returns 0
        let mut eof = [0u8; 1];
        let n = unsafe { libc::read(fd.as_raw_fd(), eof.as_mut_ptr().cast(), 1) };
        if n == 0 { Ok(()) } else { Err(()) }
    }
}

/// One accepting thread: echoes `payload` bytes and closes first, until the listener is shut down.
pub fn acceptor(listener: &OwnedFd, shared: &Shared, payload: u32) {
    let mut buf = vec![0u8; payload as usize];
    loop {
        let fd = unsafe { libc::accept4(listener.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
        if fd < 0 {
            // after finish() shut the listener down, accept fails for good
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            continue;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        if !buf.is_empty() {
            set_timeouts(&fd);
            if read_full(&fd, &mut buf).is_ok() {
                let _ = write_full(&fd, &buf);
            }
        }
        drop(fd); // the server closes first: see lib.rs
    }
    shared.counters.cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
}
