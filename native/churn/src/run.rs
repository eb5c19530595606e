//! `nettrace bench churn`'s load: TCP connections opened and closed by native
//! threads, so the generator costs the same whatever traces it, and
//! JavaScript's own speed never limits the rate being measured.
//!
//! Every connection walks the whole lifecycle: connect, `payload` bytes each
//! way, the server closes first (FIN) and the client closes after seeing it,
//! with RST (SO_LINGER 0) or FIN. The server closing first paces clients to
//! the acceptors (otherwise the accept queue overflows and SYNs wait a second
//! for their retransmit) and leaves no client TIME_WAIT to exhaust ports.

use std::io::Error as IoError;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{Code, NtError};

const MAX_PAYLOAD: u32 = 1 << 20;

#[napi(object)]
pub struct ChurnOptions {
    /// Connections per second over all clients; absent or 0: as fast as possible.
    pub rate: Option<f64>,
    /// Client threads, each with one connection at a time.
    pub concurrency: u32,
    /// Accepting threads.
    pub acceptors: u32,
    /// Bytes sent each way on every connection.
    pub payload: u32,
    /// The server's address: 127.0.0.1, ::1 or a veth address.
    pub server: String,
    /// Close the client side with RST (SO_LINGER 0) instead of FIN.
    pub rst: bool,
    /// Network namespace files (/run/netns/NAME) the server and the clients run in.
    pub server_netns: Option<String>,
    pub client_netns: Option<String>,
    pub duration_ms: u32,
}

/// Counters and latencies since the run began, plus the latencies of the
/// interval since the previous sample.
#[napi(object)]
pub struct ChurnSample {
    pub elapsed_ms: f64,
    pub conns: f64,
    pub connected: f64,
    pub connect_failed: f64,
    pub errors: f64,
    pub accepted: f64,
    pub interval_connects: f64,
    pub interval_p50_ns: f64,
    pub interval_p99_ns: f64,
    pub interval_max_ns: f64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub max_ns: f64,
    /// CPU the generator's threads used, ns (threads still running count up to their last connection).
    pub generator_cpu_ns: f64,
    pub running: bool,
}

/// Connect latency, log-linear: 32 buckets per power of two (3% precision), fixed size.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const SUB: u32 = 5;

impl Histogram {
    fn new() -> Self {
        Histogram { counts: vec![0; ((64 - SUB) << SUB) as usize], total: 0, max: 0 }
    }
    fn index(v: u64) -> usize {
        if v < (1 << SUB) {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        ((((e - SUB + 1) << SUB) as u64) + ((v >> (e - SUB)) & ((1 << SUB) - 1))) as usize
    }
    /// The largest value a bucket holds.
    fn upper(i: usize) -> u64 {
        if i < (1 << SUB) {
            return i as u64;
        }
        let e = (i as u32 >> SUB) + SUB - 1;
        let m = (i as u64) & ((1 << SUB) - 1);
        (((1 << SUB) + m + 1) << (e - SUB)) - 1
    }
    fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }
    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
    fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.max = 0;
    }
}

#[derive(Default)]
struct Counters {
    conns: AtomicU64,
    connected: AtomicU64,
    connect_failed: AtomicU64,
    errors: AtomicU64,
    accepted: AtomicU64,
    cpu_ns: AtomicU64,
    clients_left: AtomicUsize,
    /// When the last client finished, ns after the start.
    ended_ns: AtomicU64,
}

struct Shared {
    began: Instant,
    stop: AtomicBool,
    counters: Counters,
    /// One per client thread, so recording never contends.
    latencies: Vec<Mutex<Histogram>>,
}

#[napi]
pub struct ChurnRun {
    options: ChurnOptions,
    server: SocketAddr,
    listener: Option<Arc<OwnedFd>>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    acceptors: Vec<JoinHandle<()>>,
    began: Option<Instant>,
    total: Histogram,
}

fn invalid(msg: String) -> napi::Error {
    NtError::new(Code::Invalid, msg).into()
}

fn os_error(what: &str) -> napi::Error {
    NtError::new(Code::Kernel, format!("{what}: {}", IoError::last_os_error())).into()
}

#[napi]
impl ChurnRun {
    /// Opens the listener (its port is known from here on) without starting any load.
    #[napi(factory)]
    pub fn open(options: ChurnOptions) -> Result<ChurnRun> {
        if options.concurrency == 0 || options.concurrency > 4096 {
            return Err(invalid(format!("concurrency {} is outside 1..4096", options.concurrency)));
        }
        if options.acceptors == 0 || options.acceptors > 1024 {
            return Err(invalid(format!("acceptors {} is outside 1..1024", options.acceptors)));
        }
        if options.payload > MAX_PAYLOAD {
            return Err(invalid(format!("payload {} is over {MAX_PAYLOAD} bytes", options.payload)));
        }
        let ip: IpAddr = options.server.parse().map_err(|_| invalid(format!("'{}' is not an IP address", options.server)))?;
        let netns = options.server_netns.clone();
        let listener = in_netns(netns.as_deref(), move || listen(ip)).map_err(|e| napi::Error::from(NtError::new(Code::Kernel, e)))??;
        let server = local_addr(&listener)?;
        let shared = Arc::new(Shared {
            began: Instant::now(),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            latencies: (0..options.concurrency).map(|_| Mutex::new(Histogram::new())).collect(),
        });
        Ok(ChurnRun {
            options,
            server,
            listener: Some(Arc::new(listener)),
            shared,
            threads: Vec::new(),
            acceptors: Vec::new(),
            began: None,
            total: Histogram::new(),
        })
    }

    /// The listening port, for filtering a tracer to this load.
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.server.port() as u32
    }

    /// Starts the acceptors and the clients; they stop by themselves after `durationMs`.
    #[napi]
    pub fn go(&mut self) -> Result<()> {
        if self.began.is_some() {
            return Err(invalid("the churn already started".into()));
        }
        let listener = self.listener.clone().ok_or_else(|| invalid("the churn is finished".into()))?;
        let o = &self.options;
        for _ in 0..o.acceptors {
            let (l, s, ns, payload) = (listener.clone(), self.shared.clone(), o.server_netns.clone(), o.payload);
            self.acceptors.push(spawn_in(ns, move || acceptor(&l, &s, payload))?);
        }
        let deadline = Instant::now() + Duration::from_millis(o.duration_ms as u64);
        // open loop per client: each keeps its share of the rate on its own schedule
        let gap = o.rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(o.concurrency as f64 / r));
        self.shared.counters.clients_left.store(o.concurrency as usize, Ordering::SeqCst);
        self.began = Some(Instant::now());
        for i in 0..o.concurrency as usize {
            let client = Client { id: i, server: self.server, rst: o.rst, payload: o.payload, gap, deadline };
            let s = self.shared.clone();
            self.threads.push(spawn_in(o.client_netns.clone(), move || client.run(&s))?);
        }
        Ok(())
    }

    /// Counters so far, and the latencies since the previous sample.
    #[napi]
    pub fn sample(&mut self) -> ChurnSample {
        let mut interval = Histogram::new();
        for h in &self.shared.latencies {
            let mut h = h.lock().unwrap();
            interval.merge(&h);
            h.clear();
        }
        self.total.merge(&interval);
        let c = &self.shared.counters;
        let running = self.began.is_some() && c.clients_left.load(Ordering::SeqCst) > 0;
        // from the start to the last client's end, however late this sample is taken
        let elapsed = match self.began {
            Some(b) if running => b.elapsed(),
            Some(b) => (self.shared.began + Duration::from_nanos(c.ended_ns.load(Ordering::SeqCst))).saturating_duration_since(b),
            None => Duration::ZERO,
        };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        ChurnSample {
            elapsed_ms: elapsed.as_secs_f64() * 1000.0,
            conns: n(&c.conns),
            connected: n(&c.connected),
            connect_failed: n(&c.connect_failed),
            errors: n(&c.errors),
            accepted: n(&c.accepted),
            interval_connects: interval.total as f64,
            interval_p50_ns: interval.quantile(0.5) as f64,
            interval_p99_ns: interval.quantile(0.99) as f64,
            interval_max_ns: interval.max as f64,
            p50_ns: self.total.quantile(0.5) as f64,
            p99_ns: self.total.quantile(0.99) as f64,
            max_ns: self.total.max as f64,
            generator_cpu_ns: n(&c.cpu_ns),
            running,
        }
    }

    /// Stops the clients early (they finish the connection at hand).
    #[napi]
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the clients, then stops the acceptors and closes the listener. Safe to call twice.
    #[napi]
    pub fn finish(&mut self) -> ChurnSample {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(l) = self.listener.take() {
            // shutdown() wakes threads blocked in accept() on Linux
            unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
            for t in self.acceptors.drain(..) {
                let _ = t.join();
            }
        }
        self.sample()
    }
}

impl Drop for ChurnRun {
    fn drop(&mut self) {
        self.stop();
        self.finish();
    }
}

struct Client {
    id: usize,
    server: SocketAddr,
    rst: bool,
    payload: u32,
    gap: Option<Duration>,
    deadline: Instant,
}

impl Client {
    fn run(&self, shared: &Shared) {
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

fn acceptor(listener: &OwnedFd, shared: &Shared, payload: u32) {
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
        drop(fd); // the server closes first: see the top of this file
    }
    shared.counters.cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
}

/// Runs `f` on a thread of its own in the network namespace `netns` (the
/// caller's when None); setns affects only that thread.
fn spawn_in<F: FnOnce() + Send + 'static>(netns: Option<String>, f: F) -> Result<JoinHandle<()>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("nettrace-churn".into())
        .spawn(move || {
            if let Err(e) = enter_netns(netns.as_deref()) {
                let _ = tx.send(Err(e));
                return;
            }
            let _ = tx.send(Ok(()));
            f()
        })
        .map_err(|e| NtError::new(Code::Kernel, format!("cannot start a churn thread: {e}")))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(NtError::new(Code::Kernel, e).into()),
        Err(_) => Err(NtError::new(Code::Kernel, "a churn thread died at start").into()),
    }
}

/// Runs `f` on a short-lived thread in `netns` and returns its result.
fn in_netns<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(netns: Option<&str>, f: F) -> std::result::Result<T, String> {
    let netns = netns.map(str::to_owned);
    std::thread::spawn(move || enter_netns(netns.as_deref()).map(|_| f()))
        .join()
        .map_err(|_| "a churn thread panicked".to_string())?
}

fn enter_netns(netns: Option<&str>) -> std::result::Result<(), String> {
    let Some(path) = netns else { return Ok(()) };
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open network namespace {path}: {e}"))?;
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("cannot enter network namespace {path}: {}", IoError::last_os_error()));
    }
    Ok(())
}

fn thread_cpu_ns() -> u64 {
    let mut ts: libc::timespec = unsafe { zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn socket(addr: &SocketAddr) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv6() { libc::AF_INET6 } else { libc::AF_INET };
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(IoError::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) {
    unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), size_of::<T>() as u32) };
}

/// Bounds every blocking call, connect() included (it waits with the send timeout).
fn set_timeouts(fd: &OwnedFd) {
    let tv = libc::timeval { tv_sec: 1, tv_usec: 0 };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv);
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv);
}

fn listen(ip: IpAddr) -> Result<OwnedFd> {
    let fd = socket(&SocketAddr::new(ip, 0)).map_err(|e| NtError::new(Code::Kernel, format!("socket: {e}")))?;
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32);
    // port 0: the kernel picks a free one, so runs never collide
    let (addr, len) = sockaddr(&SocketAddr::new(ip, 0));
    if unsafe { libc::bind(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, len) } != 0 {
        return Err(os_error(&format!("cannot listen on {ip}")));
    }
    if unsafe { libc::listen(fd.as_raw_fd(), 4096) } != 0 {
        return Err(os_error("listen"));
    }
    Ok(fd)
}

fn local_addr(fd: &OwnedFd) -> Result<SocketAddr> {
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as u32;
    if unsafe { libc::getsockname(fd.as_raw_fd(), &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } != 0 {
        return Err(os_error("getsockname"));
    }
    Ok(if ss.ss_family as i32 == libc::AF_INET6 {
        let a: &libc::sockaddr_in6 = unsafe { &*(&ss as *const _ as *const libc::sockaddr_in6) };
        SocketAddr::new(IpAddr::from(a.sin6_addr.s6_addr), u16::from_be(a.sin6_port))
    } else {
        let a: &libc::sockaddr_in = unsafe { &*(&ss as *const _ as *const libc::sockaddr_in) };
        SocketAddr::new(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()), u16::from_be(a.sin_port))
    })
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, u32) {
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let s: &mut libc::sockaddr_in = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            s.sin_family = libc::AF_INET as u16;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            (ss, size_of::<libc::sockaddr_in>() as u32)
        }
        SocketAddr::V6(a) => {
            let s: &mut libc::sockaddr_in6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            s.sin6_family = libc::AF_INET6 as u16;
            s.sin6_port = a.port().to_be();
            s.sin6_addr.s6_addr = a.ip().octets();
            (ss, size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}

/// Short reads and writes happen on a stream: loop until done or failed.
fn write_full(fd: &OwnedFd, buf: &[u8]) -> std::result::Result<(), ()> {
    let mut put = 0;
    while put < buf.len() {
        let n = unsafe { libc::write(fd.as_raw_fd(), buf[put..].as_ptr().cast(), buf.len() - put) };
        if n <= 0 {
            return Err(());
        }
        put += n as usize;
    }
    Ok(())
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> std::result::Result<(), ()> {
    let mut got = 0;
    while got < buf.len() {
        let n = unsafe { libc::read(fd.as_raw_fd(), buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n <= 0 {
            return Err(());
        }
        got += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn buckets_hold_their_values() {
        for v in [0u64, 1, 31, 32, 33, 63, 64, 100, 1000, 123_456, 1 << 40] {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v, "{v}");
            assert!(i == 0 || Histogram::upper(i - 1) < v, "{v}");
        }
    }
}
