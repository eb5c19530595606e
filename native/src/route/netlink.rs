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
mod tests {
    //! Answers captured from Linux 6.18 in a network namespace set up as:
    //!   ntnc0 (ifindex 3) 10.1.0.1/24 fd00::1/64, ntnc1 (ifindex 5) 10.2.0.1/24
    //!   default via 10.1.0.254 dev ntnc0 metric 100
    //!   192.0.2.0/24 nexthop via 10.1.0.2 dev ntnc0 nexthop via 10.2.0.2 dev ntnc1
    //!   198.51.100.0/24 via inet6 fd00::2 dev ntnc0
    //!   203.0.113.0/24 via 10.2.0.9 table 100
    //! each the bytes of one recv(2) of the answer to the request numbered in its name.

    use super::*;

    const GET_192_0_2_7_SEQ_1: &str = concat!(
        "7000000018000000010000008068000002200000fe0000010002000008000f00fe00000008000100c000020708000400",
        "05000000080007000a020001080005000a020002080019000000000024000c0002000000000000000000000000000000",
        "00000000000000000000000000000000",
    );
    const FIBMATCH_192_0_2_7_SEQ_2: &str = concat!(
        "5000000018000000020000008068000002180000fe0300010000000008000f00fe00000008000100c000020024000900",
        "1000000003000000080005000a0100021000000005000000080005000a020002",
    );
    const FIBMATCH_198_51_100_5_SEQ_3: &str = concat!(
        "4c00000018000000030000008068000002180000fe0300010000000008000f00fe00000008000100c633640016001200",
        "0a00fd00000000000000000000000000000200000800040003000000",
    );
    const GET_2001_DB8__1_SEQ_4: &str = concat!(
        "440000000200000004000000806800009bffffff300000001a00010004000000000000000a8000000000000000100000",
        "1400010020010db8000000000000000000000001",
    );
    const DUMP_IPV4_SEQ_5_FIRST: &str = concat!(
        "3c00000018000200050000008068000002180000640300010000000008000f006400000008000100cb00710008000500",
        "0a02000908000400050000003c00000018000200050000008068000002000000fe0300010000000008000f00fe000000",
        "0800060064000000080005000a0100fe08000400030000003c00000018000200050000008068000002180000fe02fd01",
        "0000000008000f00fe000000080001000a010000080007000a01000108000400030000003c0000001800020005000000",
        "8068000002180000fe02fd010000000008000f00fe000000080001000a020000080007000a0200010800040005000000",
        "5000000018000200050000008068000002180000fe0300010000000008000f00fe00000008000100c000020024000900",
        "1000000003000000080005000a0100021000000005000000080005000a0200024c000000180002000500000080680000",
        "02180000fe0300010000000008000f00fe00000008000100c6336400160012000a00fd00000000000000000000000000",
        "0002000008000400030000003c00000018000200050000008068000002200000ff02fe020000000008000f00ff000000",
        "080001000a010001080007000a01000108000400030000003c00000018000200050000008068000002200000ff02fd03",
        "0000000008000f00ff000000080001000a0100ff080007000a01000108000400030000003c0000001800020005000000",
        "8068000002200000ff02fe020000000008000f00ff000000080001000a020001080007000a0200010800040005000000",
        "3c00000018000200050000008068000002200000ff02fd030000000008000f00ff000000080001000a0200ff08000700",
        "0a02000108000400050000003c00000018000200050000008068000002080000ff02fe020000000008000f00ff000000",
        "080001007f000000080007007f00000108000400010000003c00000018000200050000008068000002200000ff02fe02",
        "0000000008000f00ff000000080001007f000001080007007f00000108000400010000003c0000001800020005000000",
        "8068000002200000ff02fd030000000008000f00ff000000080001007fffffff080007007f0000010800040001000000",
    );
    const DUMP_IPV4_SEQ_5_LAST: &str = concat!(
        "1400000003000200050000008068000000000000",
    );

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn answer(hex: &str, seq: u32, dump: bool) -> (Option<io::Result<()>>, Vec<Route>) {
        let mut routes = Vec::new();
        let done = read_answer(&bytes(hex), seq, dump, &mut routes);
        (done, routes)
    }

    fn v4(dst: &str, dst_len: u8, table: u32) -> Route {
        Route { family: libc::AF_INET as u8, dst: ip(dst), dst_len, table, kind: libc::RTN_UNICAST, ..Route::default() }
    }

    #[test]
    fn a_look_up_is_answered_by_the_route_taken() {
        let (done, routes) = answer(GET_192_0_2_7_SEQ_1, 1, false);
        assert!(matches!(done, Some(Ok(()))));
        // `ip route get 192.0.2.7`: 192.0.2.7 via 10.2.0.2 dev ntnc1 src 10.2.0.1, a cached clone
        let taken = Route { flags: libc::RTM_F_CLONED, oif: Some(5), gateway: ip("10.2.0.2"), prefsrc: ip("10.2.0.1"), ..v4("192.0.2.7", 32, 254) };
        assert_eq!(routes, vec![taken]);
    }

    #[test]
    fn a_fib_match_of_a_multipath_route_lists_its_next_hops() {
        let (done, routes) = answer(FIBMATCH_192_0_2_7_SEQ_2, 2, false);
        assert!(matches!(done, Some(Ok(()))));
        let entry = Route { protocol: libc::RTPROT_BOOT, nexthops: vec![(ip("10.1.0.2"), 3), (ip("10.2.0.2"), 5)], ..v4("192.0.2.0", 24, 254) };
        assert_eq!(routes, vec![entry]);
    }

    #[test]
    fn a_gateway_of_the_other_family_comes_from_rta_via() {
        let (_, routes) = answer(FIBMATCH_198_51_100_5_SEQ_3, 3, false);
        let entry = Route { protocol: libc::RTPROT_BOOT, oif: Some(3), gateway: ip("fd00::2"), ..v4("198.51.100.0", 24, 254) };
        assert_eq!(routes, vec![entry]);
    }

    #[test]
    fn the_kernels_error_is_the_answer() {
        let (done, routes) = answer(GET_2001_DB8__1_SEQ_4, 4, false);
        assert_eq!(done.unwrap().unwrap_err().raw_os_error(), Some(libc::ENETUNREACH));
        assert!(routes.is_empty());
    }

    #[test]
    fn a_dump_goes_on_until_its_done_message() {
        let mut routes = Vec::new();
        assert!(read_answer(&bytes(DUMP_IPV4_SEQ_5_FIRST), 5, true, &mut routes).is_none());
        assert!(matches!(read_answer(&bytes(DUMP_IPV4_SEQ_5_LAST), 5, true, &mut routes), Some(Ok(()))));
        assert_eq!(routes.len(), 13);
        let boot = |r: Route| Route { protocol: libc::RTPROT_BOOT, ..r };
        // every table's routes, in the kernel's order: table 100's, main's, then local's
        assert_eq!(routes[0], boot(Route { oif: Some(5), gateway: ip("10.2.0.9"), ..v4("203.0.113.0", 24, 100) }));
        let default = Route { dst: None, oif: Some(3), gateway: ip("10.1.0.254"), metric: Some(100), ..v4("0.0.0.0", 0, 254) };
        assert_eq!(routes[1], boot(default));
        let link = Route { protocol: libc::RTPROT_KERNEL, scope: libc::RT_SCOPE_LINK, oif: Some(3), prefsrc: ip("10.1.0.1"), ..v4("10.1.0.0", 24, 254) };
        assert_eq!(routes[2], link);
        let local = Route { protocol: libc::RTPROT_KERNEL, scope: libc::RT_SCOPE_HOST, kind: libc::RTN_LOCAL, oif: Some(1), prefsrc: ip("127.0.0.1"), ..v4("127.0.0.0", 8, 255) };
        assert_eq!(routes[10], local);
        let broadcast = Route { protocol: libc::RTPROT_KERNEL, scope: libc::RT_SCOPE_LINK, kind: libc::RTN_BROADCAST, oif: Some(1), prefsrc: ip("127.0.0.1"), ..v4("127.255.255.255", 32, 255) };
        assert_eq!(routes[12], broadcast);
    }

    #[test]
    fn answers_to_another_request_are_passed_over() {
        let (done, routes) = answer(GET_192_0_2_7_SEQ_1, 2, false);
        assert!(done.is_none());
        assert!(routes.is_empty());
    }

    #[test]
    fn a_look_up_request_is_an_rtmsg_and_its_destination() {
        // what `ip route get 192.0.2.7` sends after the netlink header: struct rtmsg, then RTA_DST
        let mut msg = rtmsg(libc::AF_INET as u8, 32, libc::RTM_F_LOOKUP_TABLE);
        push_attr(&mut msg, libc::RTA_DST, &[192, 0, 2, 7]);
        assert_eq!(msg, [2, 32, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 8, 0, 1, 0, 192, 0, 2, 7]);
    }
}
