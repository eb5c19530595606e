//! The few rtnetlink messages nettrace needs, over raw NETLINK_ROUTE sockets:
//! RTM_GETROUTE for one destination (`ip route get`, and with RTM_F_FIB_MATCH
//! `ip route get fibmatch`), the route dump (`ip route show table all`), and
//! the route, link, address and rule change notifications.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDRLEN: usize = 16;
const RTMSG_LEN: usize = 12;
const RTA_HDRLEN: usize = 4;
const RECV_BYTES: usize = 64 * 1024;

/// What the kernel says of one route: a lookup's answer or a row of the dump.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Route {
    pub family: u8,
    /// Prefix (the destination itself for a plain lookup) and its length.
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    pub kind: u8,
    pub flags: u32,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub prefsrc: Option<IpAddr>,
    pub metric: Option<u32>,
    /// Next hops of a multipath route: gateway (if any) and output interface.
    pub nexthops: Vec<(Option<IpAddr>, u32)>,
}

pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn last_error<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

impl Socket {
    /// A NETLINK_ROUTE socket of the calling thread's network namespace, joined to `groups`.
    pub fn open(groups: &[u32]) -> io::Result<Socket> {
        // SAFETY: plain socket(2); the fd is owned from here on.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return last_error();
        }
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        let len = std::mem::size_of::<libc::sockaddr_nl>() as u32;
        if unsafe { libc::bind(raw, &addr as *const _ as *const libc::sockaddr, len) } < 0 {
            return last_error();
        }
        for g in groups {
            let rc = unsafe {
                libc::setsockopt(raw, libc::SOL_NETLINK, libc::NETLINK_ADD_MEMBERSHIP, g as *const u32 as *const libc::c_void, 4)
            };
            if rc < 0 {
                return last_error();
            }
        }
        Ok(Socket { fd, seq: 0, buf: vec![0; RECV_BYTES] })
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// `ip route get ADDR` (or `ip route get fibmatch ADDR`): Err holds the kernel's errno.
    pub fn get(&mut self, addr: IpAddr, fib_match: bool) -> io::Result<Route> {
        let (family, bytes) = addr_bytes(addr);
        let flags = libc::RTM_F_LOOKUP_TABLE | if fib_match { libc::RTM_F_FIB_MATCH } else { 0 };
        let mut msg = rtmsg(family, (bytes.len() * 8) as u8, flags);
        push_attr(&mut msg, libc::RTA_DST, &bytes);
        let mut routes = self.request(libc::RTM_GETROUTE, libc::NLM_F_REQUEST as u16, msg)?;
        routes.pop().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no route in the kernel's answer"))
    }

    /// Every route of every table of this family, as `ip route show table all` lists them, without cached clones.
    pub fn dump(&mut self, family: u8) -> io::Result<Vec<Route>> {
        let routes = self.request(libc::RTM_GETROUTE, (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16, rtmsg(family, 0, 0))?;
        Ok(routes.into_iter().filter(|r| r.flags & libc::RTM_F_CLONED == 0).collect())
    }

    /// Reads whatever is queued without waiting; true if anything (or an overrun) arrived.
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        loop {
            let n = unsafe { libc::recv(self.fd(), self.buf.as_mut_ptr() as *mut libc::c_void, self.buf.len(), libc::MSG_DONTWAIT) };
            if n > 0 {
                any = true;
                continue;
            }
            let err = io::Error::last_os_error().raw_os_error();
            if n < 0 && err == Some(libc::EINTR) {
                continue;
            }
            // ENOBUFS: notifications were lost, so anything cached may be stale
            return any || err == Some(libc::ENOBUFS);
        }
    }

    fn request(&mut self, kind: u16, flags: u16, body: Vec<u8>) -> io::Result<Vec<Route>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&body);
        if unsafe { libc::send(self.fd(), msg.as_ptr() as *const libc::c_void, msg.len(), 0) } < 0 {
            return last_error();
        }
        let dump = flags & libc::NLM_F_DUMP as u16 != 0;
        let mut routes = Vec::new();
        loop {
            let n = unsafe { libc::recv(self.fd(), self.buf.as_mut_ptr() as *mut libc::c_void, self.buf.len(), 0) };
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return last_error();
            }
            if let Some(done) = read_answer(&self.buf[..n as usize], seq, dump, &mut routes) {
                return done.map(|()| routes);
            }
        }
    }
}

/// Reads one datagram of the kernel's answer to request `seq` into `routes`:
/// Some once the answer is complete (the dump's end, the first route of a
/// look-up, or the kernel's error), None while more is to come.
fn read_answer(buf: &[u8], seq: u32, dump: bool, routes: &mut Vec<Route>) -> Option<io::Result<()>> {
    let mut at = 0usize;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            break;
        }
        let msg_type = u16_at(buf, at + 4);
        let msg_seq = u32_at(buf, at + 8);
        let payload = &buf[at + NLMSG_HDRLEN..at + len];
        at += align(len);
        if msg_seq != seq {
            continue; // an answer to an earlier request that was abandoned
        }
        match msg_type as i32 {
            libc::NLMSG_DONE => return Some(Ok(())),
            libc::NLMSG_ERROR => {
                let errno = -(u32_at(payload, 0) as i32);
                if errno != 0 {
                    return Some(Err(io::Error::from_raw_os_error(errno)));
                }
                return Some(Ok(()));
            }
            t if t == libc::RTM_NEWROUTE as i32 => {
                routes.push(parse_route(payload));
                if !dump {
                    return Some(Ok(()));
                }
            }
            _ => {}
        }
    }
    None
}

fn rtmsg(family: u8, dst_len: u8, flags: u32) -> Vec<u8> {
    let mut m = vec![family, dst_len, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&flags.to_ne_bytes());
    m
}

fn push_attr(msg: &mut Vec<u8>, kind: u16, data: &[u8]) {
    msg.extend_from_slice(&((RTA_HDRLEN + data.len()) as u16).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(data);
    msg.resize(align(msg.len()), 0);
}

fn addr_bytes(addr: IpAddr) -> (u8, Vec<u8>) {
    match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    }
}

fn parse_addr(data: &[u8]) -> Option<IpAddr> {
    match data.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
        _ => None,
    }
}

/// RTA_VIA: an address family then the address (an IPv4 route through an IPv6 gateway).
fn parse_via(data: &[u8]) -> Option<IpAddr> {
    data.get(2..).and_then(parse_addr)
}

fn parse_route(p: &[u8]) -> Route {
    if p.len() < RTMSG_LEN {
        return Route::default();
    }
    let mut r = Route {
        family: p[0],
        dst_len: p[1],
        table: p[4] as u32,
        protocol: p[5],
        scope: p[6],
        kind: p[7],
        flags: u32_at(p, 8),
        ..Route::default()
    };
    for (kind, data) in attrs(&p[RTMSG_LEN..]) {
        match kind {
            libc::RTA_DST => r.dst = parse_addr(data),
            libc::RTA_OIF if data.len() >= 4 => r.oif = Some(u32_at(data, 0)),
            libc::RTA_GATEWAY => r.gateway = parse_addr(data),
            libc::RTA_VIA => r.gateway = parse_via(data),
            libc::RTA_PREFSRC => r.prefsrc = parse_addr(data),
            libc::RTA_PRIORITY if data.len() >= 4 => r.metric = Some(u32_at(data, 0)),
            libc::RTA_TABLE if data.len() >= 4 => r.table = u32_at(data, 0),
            libc::RTA_MULTIPATH => r.nexthops = parse_nexthops(data),
            _ => {}
        }
    }
    r
}

/// struct rtnexthop { u16 len; u8 flags; u8 hops; i32 ifindex; } followed by its attributes.
fn parse_nexthops(mut data: &[u8]) -> Vec<(Option<IpAddr>, u32)> {
    let mut hops = Vec::new();
    while data.len() >= 8 {
        let len = (u16_at(data, 0) as usize).min(data.len());
        if len < 8 {
            break;
        }
        let oif = u32_at(data, 4);
        let mut gw = None;
        for (kind, a) in attrs(&data[8..len]) {
            match kind {
                libc::RTA_GATEWAY => gw = parse_addr(a),
                libc::RTA_VIA => gw = parse_via(a),
                _ => {}
            }
        }
        hops.push((gw, oif));
        data = &data[align(len).min(data.len())..];
    }
    hops
}

fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= RTA_HDRLEN {
        let len = u16_at(data, 0) as usize;
        if len < RTA_HDRLEN || len > data.len() {
            break;
        }
        out.push((u16_at(data, 2), &data[RTA_HDRLEN..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(all(test, target_endian = "little"))]
#[path = "netlink_tests.rs"]
mod tests;
