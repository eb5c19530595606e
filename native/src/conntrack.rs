//! The kernel's conntrack entries of given flows, per network namespace, for
//! JavaScript: ctnetlink GET requests by tuple (the kernel finds an entry by
//! its original or its reply tuple), many to one send, answered on libuv's
//! pool, never on the JavaScript thread. Messages are built and parsed by
//! netlink-packet-netfilter; the socket is netlink-sys's, opened inside the
//! namespace by a short-lived thread that entered it (a netlink socket stays
//! in the namespace it was made in, whichever thread uses it later).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::route::open_netns;

/// Requests sent at once: their answers (one message each, a few hundred bytes) fit the socket's buffer.
const CHUNK: usize = 128;

#[napi(object)]
pub struct ConntrackQuery {
    /// Inode of the network namespace whose table to ask.
    pub netns: u32,
    /// Where to enter it: /proc/PID/ns/net of its owners or /run/netns names, tried in turn (unused for our own).
    pub ns_paths: Vec<String>,
    #[napi(ts_type = "'tcp' | 'udp'")]
    pub proto: String,
    pub saddr: String,
    pub sport: u32,
    pub daddr: String,
    pub dport: u32,
}

#[napi(object)]
#[derive(Clone)]
pub struct ConntrackTuple {
    pub saddr: String,
    pub sport: u32,
    pub daddr: String,
    pub dport: u32,
}

/// The entry the kernel holds for the tuple: its original and reply tuples and status bits (IPS_*);
/// `found` false when it holds none; `error` when the question could not be asked.
#[napi(object)]
pub struct ConntrackAnswer {
    pub found: bool,
    pub error: Option<String>,
    pub orig: Option<ConntrackTuple>,
    pub reply: Option<ConntrackTuple>,
    pub status: u32,
}

type Entry = (ConntrackTuple, ConntrackTuple, u32);
type Answer = std::result::Result<Option<Entry>, String>;

struct Registry {
    own_netns: u64,
    sockets: Mutex<HashMap<u64, Arc<Mutex<Socket>>>>,
    /// Requests the kernel answered, and those that failed (not counting "no such entry").
    asked: AtomicU64,
}

impl Registry {
    fn socket(&self, netns: u64, paths: &[String]) -> std::result::Result<Arc<Mutex<Socket>>, String> {
        if let Some(s) = self.sockets.lock().unwrap().get(&netns) {
            return Ok(s.clone());
        }
        let sock = if netns == self.own_netns { open() } else { open_in(open_netns(netns, paths)?) };
        let sock = Arc::new(Mutex::new(sock.map_err(|e| format!("cannot open a conntrack socket in network namespace {netns}: {e}"))?));
        Ok(self.sockets.lock().unwrap().entry(netns).or_insert(sock).clone())
    }
}

fn open() -> io::Result<Socket> {
    let mut s = Socket::new(NETLINK_NETFILTER)?;
    s.bind_auto()?;
    s.connect(&SocketAddr::new(0, 0))?;
    // a kernel that never answers must not hold a pool thread for ever
    let timeout = libc::timeval { tv_sec: 2, tv_usec: 0 };
    let size = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    if unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout as *const _ as *const libc::c_void, size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(s)
}

/// Opens the socket on a thread that entered the namespace (setns on itself only) and then ends.
fn open_in(ns: OwnedFd) -> io::Result<Socket> {
    std::thread::spawn(move || {
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
            return Err(io::Error::last_os_error());
        }
        open()
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

fn request(q: &ConntrackQuery, seq: u32) -> std::result::Result<Vec<u8>, String> {
    let parse = |a: &str| a.parse::<IpAddr>().map_err(|_| format!("'{a}' is not an IP address"));
    let (src, dst) = (parse(&q.saddr)?, parse(&q.daddr)?);
    let family = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => NetfilterProtoFamily::IPv4,
        (IpAddr::V6(_), IpAddr::V6(_)) => NetfilterProtoFamily::IPv6,
        _ => return Err(format!("{src} and {dst} are of different families")),
    };
    let proto = match q.proto.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        p => return Err(format!("protocol '{p}' is neither tcp nor udp")),
    };
    let port = |p: u32| u16::try_from(p).map_err(|_| format!("port {p} is out of range"));
    let tuple = vec![
        Tuple::Ip(vec![IPTuple::SourceAddress(src), IPTuple::DestinationAddress(dst)]),
        Tuple::Proto(vec![ProtoTuple::Protocol(proto), ProtoTuple::SourcePort(port(q.sport)?), ProtoTuple::DestinationPort(port(q.dport)?)]),
    ];
    let inner = NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), ConntrackMessage::Get(vec![ConntrackAttribute::CtaTupleOrig(tuple)]));
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(inner));
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    Ok(buf)
}

fn tuple_of(parts: &[Tuple]) -> Option<ConntrackTuple> {
    let (mut saddr, mut daddr, mut sport, mut dport) = (None, None, None, None);
    for p in parts {
        match p {
            Tuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => saddr = Some(a.to_string()),
                        IPTuple::DestinationAddress(a) => daddr = Some(a.to_string()),
                        _ => {}
                    }
                }
            }
            Tuple::Proto(ps) => {
                for x in ps {
                    match x {
                        ProtoTuple::SourcePort(n) => sport = Some(*n as u32),
                        ProtoTuple::DestinationPort(n) => dport = Some(*n as u32),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(ConntrackTuple { saddr: saddr?, sport: sport?, daddr: daddr?, dport: dport? })
}

fn entry_of(attrs: &[ConntrackAttribute]) -> Option<Entry> {
    let (mut orig, mut reply, mut status) = (None, None, 0);
    for a in attrs {
        match a {
            ConntrackAttribute::CtaTupleOrig(t) => orig = tuple_of(t),
            ConntrackAttribute::CtaTupleReply(t) => reply = tuple_of(t),
            ConntrackAttribute::CtaStatus(s) => status = s.bits(),
            _ => {}
        }
    }
    Some((orig?, reply?, status))
}

/// Asks for every query's entry: CHUNK requests per send, answers matched back by sequence number.
fn ask(sock: &mut Socket, queries: &[&ConntrackQuery], first_seq: u32) -> Vec<Answer> {
    let mut out: Vec<Option<Answer>> = (0..queries.len()).map(|_| None).collect();
    for (c, chunk) in queries.chunks(CHUNK).enumerate() {
        let base = c * CHUNK;
        let mut buf = Vec::new();
        let mut pending = 0;
        for (i, q) in chunk.iter().enumerate() {
            match request(q, first_seq.wrapping_add((base + i) as u32)) {
                Ok(b) => {
                    buf.extend_from_slice(&b);
                    pending += 1;
                }
                Err(e) => out[base + i] = Some(Err(e)),
            }
        }
        if pending == 0 {
            continue;
        }
        if let Err(e) = sock.send(&buf, 0) {
            for slot in &mut out[base..base + chunk.len()] {
                slot.get_or_insert_with(|| Err(format!("cannot ask conntrack: {e}")));
            }
            continue;
        }
        let mut rx = vec![0u8; 1 << 16];
        while pending > 0 {
            let n = match sock.recv(&mut &mut rx[..], 0) {
                Ok(n) => n,
                Err(e) => {
                    for slot in &mut out[base..base + chunk.len()] {
                        slot.get_or_insert_with(|| Err(format!("no answer from conntrack: {e}")));
                    }
                    break;
                }
            };
            let mut at = 0;
            while at < n {
                let Ok(msg) = NetlinkMessage::<NetfilterMessage>::deserialize(&rx[at..n]) else { break };
                let len = (msg.header.length as usize + 3) & !3;
                at += len.max(16);
                let slot = msg.header.sequence_number.wrapping_sub(first_seq) as usize;
                if slot < base || slot >= base + chunk.len() || out[slot].is_some() {
                    continue; // an answer to a request of an earlier batch that timed out
                }
                let answer = match msg.payload {
                    NetlinkPayload::InnerMessage(NetfilterMessage { inner: NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)), .. }) => {
                        entry_of(&attrs).map(Some).ok_or_else(|| "conntrack answered an entry without tuples".to_string())
                    }
                    NetlinkPayload::Error(e) if e.code.map(|c| -c.get()) == Some(libc::ENOENT) => Ok(None),
                    NetlinkPayload::Error(e) => Err(format!("conntrack: {}", e.to_io())),
                    _ => continue,
                };
                out[slot] = Some(answer);
                pending -= 1;
            }
        }
    }
    out.into_iter().map(|o| o.unwrap_or_else(|| Err("conntrack did not answer".into()))).collect()
}

pub struct Lookup {
    registry: Arc<Registry>,
    queries: Vec<ConntrackQuery>,
}

impl Task for Lookup {
    type Output = Vec<Answer>;
    type JsValue = Vec<ConntrackAnswer>;

    fn compute(&mut self) -> Result<Self::Output> {
        let mut out: Vec<Option<Answer>> = (0..self.queries.len()).map(|_| None).collect();
        let mut by_ns: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, q) in self.queries.iter().enumerate() {
            by_ns.entry(q.netns as u64).or_default().push(i);
        }
        for (netns, idx) in by_ns {
            match self.registry.socket(netns, &self.queries[idx[0]].ns_paths) {
                Ok(sock) => {
                    let qs: Vec<&ConntrackQuery> = idx.iter().map(|&i| &self.queries[i]).collect();
                    let seq = self.registry.asked.fetch_add(qs.len() as u64, Ordering::Relaxed) as u32;
                    let answers = ask(&mut sock.lock().unwrap(), &qs, seq);
                    for (i, a) in idx.into_iter().zip(answers) {
                        out[i] = Some(a);
                    }
                }
                Err(e) => {
                    for i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        Ok(out.into_iter().map(|o| o.unwrap()).collect())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output
            .into_iter()
            .map(|a| match a {
                Ok(Some((orig, reply, status))) => ConntrackAnswer { found: true, error: None, orig: Some(orig), reply: Some(reply), status },
                Ok(None) => ConntrackAnswer { found: false, error: None, orig: None, reply: None, status: 0 },
                Err(e) => ConntrackAnswer { found: false, error: Some(e), orig: None, reply: None, status: 0 },
            })
            .collect())
    }
}

/// Conntrack look-ups per network namespace, one socket per namespace kept open.
#[napi]
pub struct NativeConntrack {
    registry: Arc<Registry>,
}

#[napi]
impl NativeConntrack {
    #[napi(constructor)]
    pub fn new() -> Result<NativeConntrack> {
        let own = std::fs::metadata("/proc/self/ns/net").map_err(|e| Error::from_reason(format!("cannot read /proc/self/ns/net: {e}")))?;
        Ok(NativeConntrack { registry: Arc::new(Registry { own_netns: own.ino(), sockets: Mutex::new(HashMap::new()), asked: AtomicU64::new(0) }) })
    }

    /// Answers in the order asked.
    #[napi(ts_return_type = "Promise<ConntrackAnswer[]>")]
    pub fn lookup(&self, queries: Vec<ConntrackQuery>) -> AsyncTask<Lookup> {
        AsyncTask::new(Lookup { registry: self.registry.clone(), queries })
    }

    /// Requests sent to the kernel so far.
    #[napi(getter)]
    pub fn requests(&self) -> f64 {
        self.registry.asked.load(Ordering::Relaxed) as f64
    }

    /// Closes the sockets of every namespace not listed, so a deleted namespace is not kept alive by nettrace.
    #[napi]
    pub fn retain(&self, netns: Vec<u32>) {
        self.registry.sockets.lock().unwrap().retain(|k, _| netns.contains(&(*k as u32)));
    }

    #[napi]
    pub fn close(&self) {
        self.registry.sockets.lock().unwrap().clear();
    }
}
