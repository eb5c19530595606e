//! One thread per network namespace: it enters the namespace (setns on itself
//! only), answers route look-ups from a cache, and empties that cache whenever
//! the namespace's routes, links, addresses or rules change, as the kernel
//! announces on a netlink socket opened inside it.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::netlink::{Route, Socket};

/// Where a look-up goes: the route the kernel picks and the FIB entry it matched.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub route: Route,
    pub matched: Route,
    pub ifname: Option<String>,
}

pub type Answer = Result<Resolved, String>;

/// Every route of the namespace, each with its output interface's name.
pub type Table = Result<Vec<(Route, Option<String>)>, String>;

pub enum Job {
    Get(Vec<IpAddr>, Sender<Vec<Answer>>),
    Dump(Sender<Table>),
}

pub struct Worker {
    jobs: Sender<Job>,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

const CHANGE_GROUPS: [u32; 7] = [
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV6_ROUTE,
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV4_RULE,
    libc::RTNLGRP_IPV6_RULE,
];

impl Worker {
    /// Starts the thread; `netns` (an open /proc/PID/ns/net) is entered first, None stays in ours.
    /// `changes` is bumped on every invalidation, so callers know when to ask again.
    pub fn spawn(netns: Option<OwnedFd>, changes: Arc<AtomicU64>, asked: Arc<AtomicU64>) -> io::Result<Worker> {
        let wake = Arc::new(eventfd()?);
        let (jobs, queue) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let wake2 = wake.clone();
        let thread = std::thread::Builder::new().name("nettrace-route".into()).spawn(move || {
            let setup = || -> io::Result<(Socket, Socket)> {
                if let Some(fd) = &netns {
                    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                // subscribe before the first look-up, so no change can slip between
                Ok((Socket::open(&CHANGE_GROUPS)?, Socket::open(&[])?))
            };
            match setup() {
                Ok((notes, queries)) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(notes, queries, &wake2, queue, &changes, &asked);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        ready.recv().map_err(|_| io::Error::other("route thread ended during set-up"))??;
        Ok(Worker { jobs, wake, thread: Some(thread) })
    }

    /// Queues a job; false if the thread is gone.
    pub fn send(&self, job: Job) -> bool {
        let ok = self.jobs.send(job).is_ok();
        poke(&self.wake);
        ok
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // closing the channel ends the loop once the thread wakes
        let (dead, _) = mpsc::channel();
        self.jobs = dead;
        poke(&self.wake);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn eventfd() -> io::Result<OwnedFd> {
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn poke(fd: &OwnedFd) {
    let one = 1u64;
    unsafe { libc::write(fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
}

struct Cache {
    routes: HashMap<IpAddr, Answer>,
    names: HashMap<u32, Option<String>>,
}

impl Cache {
    fn clear(&mut self) {
        self.routes.clear();
        self.names.clear();
    }

    fn ifname(&mut self, index: u32) -> Option<String> {
        self.names.entry(index).or_insert_with(|| ifname(index)).clone()
    }
}

fn serve(mut notes: Socket, mut queries: Socket, wake: &OwnedFd, queue: Receiver<Job>, changes: &AtomicU64, asked: &AtomicU64) {
    let mut cache = Cache { routes: HashMap::new(), names: HashMap::new() };
    loop {
        let mut fds = [
            libc::pollfd { fd: notes.fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue; // EINTR
        }
        let mut count = 0u64;
        unsafe { libc::read(wake.as_raw_fd(), &mut count as *mut u64 as *mut libc::c_void, 8) };
        loop {
            // every change the kernel announced before this job is accounted for before answering it
            if notes.drain() {
                cache.clear();
                changes.fetch_add(1, Ordering::Relaxed);
            }
            match queue.try_recv() {
                Ok(Job::Get(addrs, reply)) => {
                    let answers = addrs.iter().map(|a| cached(&mut cache, &mut queries, *a, asked)).collect();
                    let _ = reply.send(answers);
                }
                Ok(Job::Dump(reply)) => {
                    let _ = reply.send(dump(&mut cache, &mut queries));
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
    }
}

fn cached(cache: &mut Cache, sock: &mut Socket, addr: IpAddr, asked: &AtomicU64) -> Answer {
    if let Some(a) = cache.routes.get(&addr) {
        return a.clone();
    }
    asked.fetch_add(1, Ordering::Relaxed);
    let answer = sock
        .get(addr, false)
        .and_then(|route| Ok((route, sock.get(addr, true)?)))
        .map(|(route, matched)| {
            let ifname = route.oif.and_then(|i| cache.ifname(i));
            Resolved { route, matched, ifname }
        })
        .map_err(|e| errno_text(&e));
    cache.routes.insert(addr, answer.clone());
    answer
}

fn dump(cache: &mut Cache, sock: &mut Socket) -> Table {
    let mut all = sock.dump(libc::AF_INET as u8).map_err(|e| errno_text(&e))?;
    all.extend(sock.dump(libc::AF_INET6 as u8).map_err(|e| errno_text(&e))?);
    Ok(all
        .into_iter()
        .map(|r| {
            let name = r.oif.and_then(|i| cache.ifname(i));
            (r, name)
        })
        .collect())
}

/// The kernel's reason as `ip` prints it ("Network is unreachable"), without Rust's "(os error N)".
fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// if_indextoname asks through a socket made on this thread, so it answers for the thread's namespace.
fn ifname(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}
