//! netlink.rs's parsers on answers captured from Linux 6.18 in a network namespace set up as:
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
const DUMP_IPV4_SEQ_5_LAST: &str = "1400000003000200050000008068000000000000";

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
