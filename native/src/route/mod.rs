//! Routes as the kernel decides them, per network namespace, for JavaScript:
//! look-ups and dumps run on libuv's pool and on one thread per namespace,
//! never on the JavaScript thread.

mod netlink;
mod worker;

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use netlink::Route;
use worker::{Answer, Job, Worker};

#[napi(object)]
pub struct RouteQuery {
    /// Inode of the flow's network namespace.
    pub netns: u32,
    /// Where to enter it: /proc/PID/ns/net of its owners, tried in turn (unused for our own namespace).
    pub ns_paths: Vec<String>,
    pub daddr: String,
}

/// One route, with the numbers the kernel gave; names are for the caller to choose.
#[napi(object)]
pub struct NativeRoute {
    #[napi(ts_type = "4 | 6")]
    pub family: u32,
    /// The prefix ("0.0.0.0" with dst_len 0 for a default route).
    pub dst: String,
    pub dst_len: u32,
    pub table: u32,
    pub protocol: u32,
    pub scope: u32,
    #[napi(js_name = "type")]
    pub kind: u32,
    pub ifindex: Option<u32>,
    pub ifname: Option<String>,
    pub gateway: Option<String>,
    pub prefsrc: Option<String>,
    pub metric: Option<u32>,
    pub nexthops: Vec<NativeNexthop>,
}

#[napi(object)]
pub struct NativeNexthop {
    pub gateway: Option<String>,
    pub ifindex: u32,
}

/// `ip route get`: the route taken (`route`, with the source the kernel picks) and the FIB entry that decided it (`matched`).
#[napi(object)]
pub struct RouteAnswer {
    pub daddr: String,
    pub error: Option<String>,
    pub route: Option<NativeRoute>,
    pub matched: Option<NativeRoute>,
}

struct Registry {
    own_netns: u64,
    workers: Mutex<HashMap<u64, Arc<Worker>>>,
    changes: Arc<AtomicU64>,
    /// Destinations the kernel was asked about (cache misses).
    asked: Arc<AtomicU64>,
}

impl Registry {
    /// The namespace's worker, started on first use by entering it through the first path that is that namespace.
    fn worker(&self, netns: u64, paths: &[String]) -> std::result::Result<Arc<Worker>, String> {
        if let Some(w) = self.workers.lock().unwrap().get(&netns) {
            return Ok(w.clone());
        }
        let fd = if netns == self.own_netns { None } else { Some(open_netns(netns, paths)?) };
        let w = Arc::new(Worker::spawn(fd, self.changes.clone(), self.asked.clone()).map_err(|e| format!("cannot watch the routes of network namespace {netns}: {e}"))?);
        // a change before the worker subscribed may have gone unseen by callers' caches
        self.changes.fetch_add(1, Ordering::Relaxed);
        Ok(self.workers.lock().unwrap().entry(netns).or_insert(w).clone())
    }

    fn ask<T>(&self, netns: u64, paths: &[String], job: impl FnOnce(mpsc::Sender<T>) -> Job) -> std::result::Result<T, String> {
        let w = self.worker(netns, paths)?;
        let (tx, rx) = mpsc::channel();
        w.send(job(tx));
        rx.recv().map_err(|_| format!("the route thread of network namespace {netns} ended"))
    }
}

/// Opens a /proc/PID/ns/net and checks it is the namespace meant (a pid may have been reused).
pub(crate) fn open_netns(netns: u64, paths: &[String]) -> std::result::Result<OwnedFd, String> {
    for p in paths {
        // fstat of the opened file, so the check and the setns see the same namespace
        let Ok(file) = std::fs::File::open(p) else { continue };
        if file.metadata().map(|m| m.ino()).ok() == Some(netns) {
            return Ok(file.into());
        }
    }
    Err(format!("network namespace {netns} cannot be entered: none of its owners is alive"))
}

fn text(a: Option<IpAddr>) -> Option<String> {
    a.map(|a| a.to_string())
}

fn to_js(r: Route, ifname: Option<String>) -> NativeRoute {
    let unspecified = if r.family == libc::AF_INET6 as u8 { "::" } else { "0.0.0.0" };
    NativeRoute {
        family: if r.family == libc::AF_INET6 as u8 { 6 } else { 4 },
        dst: text(r.dst).unwrap_or_else(|| unspecified.into()),
        dst_len: r.dst_len as u32,
        table: r.table,
        protocol: r.protocol as u32,
        scope: r.scope as u32,
        kind: r.kind as u32,
        ifindex: r.oif,
        ifname,
        gateway: text(r.gateway),
        prefsrc: text(r.prefsrc),
        metric: r.metric,
        nexthops: r.nexthops.into_iter().map(|(gw, i)| NativeNexthop { gateway: text(gw), ifindex: i }).collect(),
    }
}

pub struct Lookup {
    registry: Arc<Registry>,
    queries: Vec<RouteQuery>,
}

impl Task for Lookup {
    type Output = Vec<(String, Answer)>;
    type JsValue = Vec<RouteAnswer>;

    fn compute(&mut self) -> Result<Self::Output> {
        let mut out: Vec<Option<(String, Answer)>> = (0..self.queries.len()).map(|_| None).collect();
        // one job per namespace, each a batch of addresses
        let mut by_ns: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, q) in self.queries.iter().enumerate() {
            match q.daddr.parse::<IpAddr>() {
                Ok(_) => by_ns.entry(q.netns as u64).or_default().push(i),
                Err(_) => out[i] = Some((q.daddr.clone(), Err(format!("'{}' is not an IP address", q.daddr)))),
            }
        }
        for (netns, idx) in by_ns {
            let addrs: Vec<IpAddr> = idx.iter().map(|&i| self.queries[i].daddr.parse().unwrap()).collect();
            let paths = &self.queries[idx[0]].ns_paths;
            match self.registry.ask(netns, paths, |tx| Job::Get(addrs, tx)) {
                Ok(answers) => {
                    for (i, a) in idx.iter().zip(answers) {
                        out[*i] = Some((self.queries[*i].daddr.clone(), a));
                    }
                }
                Err(e) => {
                    for i in idx {
                        out[i] = Some((self.queries[i].daddr.clone(), Err(e.clone())));
                    }
                }
            }
        }
        Ok(out.into_iter().map(|o| o.unwrap()).collect())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output
            .into_iter()
            .map(|(daddr, a)| match a {
                Ok(r) => RouteAnswer { daddr, error: None, route: Some(to_js(r.route, r.ifname)), matched: Some(to_js(r.matched, None)) },
                Err(e) => RouteAnswer { daddr, error: Some(e), route: None, matched: None },
            })
            .collect())
    }
}

pub struct Dump {
    registry: Arc<Registry>,
    netns: u64,
    paths: Vec<String>,
}

impl Task for Dump {
    type Output = Vec<(Route, Option<String>)>;
    type JsValue = Vec<NativeRoute>;

    fn compute(&mut self) -> Result<Self::Output> {
        self.registry
            .ask(self.netns, &self.paths, Job::Dump)
            .and_then(|r| r)
            .map_err(|e| Error::new(Status::GenericFailure, format!("cannot read the routing table: {e}")))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into_iter().map(|(r, n)| to_js(r, n)).collect())
    }
}

/// Route look-ups per network namespace, cached until the kernel announces a change.
#[napi]
pub struct NativeRoutes {
    registry: Arc<Registry>,
}

#[napi]
impl NativeRoutes {
    #[napi(constructor)]
    pub fn new() -> Result<NativeRoutes> {
        let own = std::fs::metadata("/proc/self/ns/net").map_err(|e| Error::from_reason(format!("cannot read /proc/self/ns/net: {e}")))?;
        Ok(NativeRoutes {
            registry: Arc::new(Registry { own_netns: own.ino(), workers: Mutex::new(HashMap::new()), changes: Arc::new(AtomicU64::new(0)), asked: Arc::new(AtomicU64::new(0)) }),
        })
    }

    /// Answers in the order asked; an address with no route carries the kernel's reason in `error`.
    #[napi(ts_return_type = "Promise<RouteAnswer[]>")]
    pub fn lookup(&self, queries: Vec<RouteQuery>) -> AsyncTask<Lookup> {
        AsyncTask::new(Lookup { registry: self.registry.clone(), queries })
    }

    /// Every route of every table (IPv4 then IPv6) of the namespace.
    #[napi(ts_return_type = "Promise<NativeRoute[]>")]
    pub fn dump(&self, netns: u32, ns_paths: Vec<String>) -> AsyncTask<Dump> {
        AsyncTask::new(Dump { registry: self.registry.clone(), netns: netns as u64, paths: ns_paths })
    }

    /// Grows whenever any watched namespace's routes, links, addresses or rules changed: earlier answers may be stale.
    #[napi(getter)]
    pub fn changes(&self) -> f64 {
        self.registry.changes.load(Ordering::Relaxed) as f64
    }

    /// Destinations looked up in the kernel so far; every other answer came from a cache.
    #[napi(getter)]
    pub fn kernel_lookups(&self) -> f64 {
        self.registry.asked.load(Ordering::Relaxed) as f64
    }

    /// Namespaces watched now.
    #[napi(getter)]
    pub fn namespaces(&self) -> Vec<u32> {
        self.registry.workers.lock().unwrap().keys().map(|&k| k as u32).collect()
    }

    /// Stops watching every namespace not listed, so a deleted namespace is not kept alive by nettrace.
    #[napi]
    pub fn retain(&self, netns: Vec<u32>) {
        let gone: Vec<Arc<Worker>> = {
            let mut w = self.registry.workers.lock().unwrap();
            let drop: Vec<u64> = w.keys().filter(|k| !netns.contains(&(**k as u32))).copied().collect();
            drop.iter().filter_map(|k| w.remove(k)).collect()
        };
        // a thread may be in the middle of a batch: let it finish off the JavaScript thread
        if !gone.is_empty() {
            std::thread::spawn(move || drop(gone));
        }
    }

    /// Stops every namespace thread and waits for them to leave their namespaces.
    #[napi]
    pub fn close(&self) {
        let all: Vec<Arc<Worker>> = self.registry.workers.lock().unwrap().drain().map(|(_, w)| w).collect();
        drop(all);
    }
}
