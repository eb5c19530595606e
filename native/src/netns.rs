//! The one network namespace a tracer is scoped to (`netns` option). The ring's
//! records are filtered in the kernel (nt_filter.netns); the socket iterators
//! list the namespace of the thread that creates them, so their iterator is
//! created on a short-lived thread that entered the namespace first.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::errors::{Code, NtError};

pub struct Netns {
    fd: OwnedFd,
    pub inode: u32,
}

impl Netns {
    /// Opens `path` (a /run/netns entry or a /proc/PID/ns/net) and checks it is the namespace `inode`.
    pub fn open(path: &str, inode: u32) -> Result<Netns, NtError> {
        let file = File::open(path).map_err(|e| NtError::new(Code::Invalid, format!("cannot open network namespace {path}: {e}")))?;
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        if ino != inode as u64 {
            return Err(NtError::new(Code::Invalid, format!("{path} is network namespace {ino}, not {inode}")));
        }
        Ok(Netns { fd: file.into(), inode })
    }

    /// Reads the iterator of `link` as seen from inside the namespace.
    pub fn read_iter(&self, link: &libbpf_rs::Link) -> Result<Vec<u8>, String> {
        let ns = self.fd.as_fd();
        let link_fd = link.as_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                    return Err(format!("cannot enter network namespace {}: {}", self.inode, std::io::Error::last_os_error()));
                }
                let fd = unsafe { libbpf_rs::libbpf_sys::bpf_iter_create(link_fd.as_raw_fd()) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error().to_string());
                }
                let mut out = Vec::new();
                File::from(unsafe { OwnedFd::from_raw_fd(fd) }).read_to_end(&mut out).map_err(|e| e.to_string())?;
                Ok(out)
            })
            .join()
            .unwrap_or_else(|_| Err("the namespace thread panicked".into()))
        })
    }
}
