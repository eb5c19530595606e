//! One run of the load as JavaScript drives it: open (the listener), go,
//! sample while it runs, finish.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{invalid, kernel};
use crate::histogram::Histogram;
use crate::load::{acceptor, Client};
use crate::shared::{Counters, Shared};
use crate::sockets::{listen, local_addr};
use crate::threads::{in_netns, spawn_in};

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
        let listener = in_netns(netns.as_deref(), move || listen(ip)).map_err(kernel)?.map_err(|e| kernel(e.to_string()))?;
        let server = local_addr(&listener).map_err(|e| kernel(e.to_string()))?;
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
            return Err(invalid("the churn already started"));
        }
        let listener = self.listener.clone().ok_or_else(|| invalid("the churn is finished"))?;
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

