//! The socket calls the generator makes, straight to libc: it measures the
//! kernel's cost of a connection, so nothing may stand between. Failures are
//! io::Errors that say what failed; run.rs hands them to JavaScript.

use std::io::Error as IoError;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The last call's errno, with what failed in front: "what: text".
fn os_error(what: &str) -> IoError {
    let e = IoError::last_os_error();
    IoError::new(e.kind(), format!("{what}: {e}"))
}

pub fn socket(addr: &SocketAddr) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv6() { libc::AF_INET6 } else { libc::AF_INET };
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(IoError::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) {
    unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), size_of::<T>() as u32) };
}

/// Bounds every blocking call, connect() included (it waits with the send timeout).
pub fn set_timeouts(fd: &OwnedFd) {
    let tv = libc::timeval { tv_sec: 1, tv_usec: 0 };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv);
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv);
}

pub fn listen(ip: IpAddr) -> std::io::Result<OwnedFd> {
    let fd = socket(&SocketAddr::new(ip, 0)).map_err(|e| IoError::new(e.kind(), format!("socket: {e}")))?;
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

pub fn local_addr(fd: &OwnedFd) -> std::io::Result<SocketAddr> {
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

pub fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, u32) {
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
pub fn write_full(fd: &OwnedFd, buf: &[u8]) -> std::result::Result<(), ()> {
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

pub fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> std::result::Result<(), ()> {
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
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use super::{listen, local_addr, sockaddr};

    #[test]
    fn a_listener_on_a_kernel_picked_port_reads_back_as_bound() {
        for ip in [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)] {
            let fd = listen(ip).expect("listen on loopback");
            let addr = local_addr(&fd).expect("getsockname");
            assert_eq!(addr.ip(), ip);
            assert_ne!(addr.port(), 0, "the kernel picked a port");
        }
    }

    #[test]
    fn sockaddr_lengths_follow_the_family() {
        let v4: SocketAddr = "10.1.2.3:443".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(sockaddr(&v4).1 as usize, std::mem::size_of::<libc::sockaddr_in>());
        assert_eq!(sockaddr(&v6).1 as usize, std::mem::size_of::<libc::sockaddr_in6>());
        assert_eq!(sockaddr(&v4).0.ss_family as i32, libc::AF_INET);
        assert_eq!(sockaddr(&v6).0.ss_family as i32, libc::AF_INET6);
    }
}
