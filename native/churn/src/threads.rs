//! The generator's threads: each in the network namespace it was given, each
//! counting its own CPU time.

use std::io::Error as IoError;
use std::mem::zeroed;
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;

use napi::Result;

use crate::errors::kernel;

/// Runs `f` on a thread of its own in the network namespace `netns` (the
/// caller's when None); setns affects only that thread.
pub fn spawn_in<F: FnOnce() + Send + 'static>(netns: Option<String>, f: F) -> Result<JoinHandle<()>> {
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
        .map_err(|e| kernel(format!("cannot start a churn thread: {e}")))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(kernel(e)),
        Err(_) => Err(kernel("a churn thread died at start")),
    }
}

/// Runs `f` on a short-lived thread in `netns` and returns its result.
pub fn in_netns<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(netns: Option<&str>, f: F) -> std::result::Result<T, String> {
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

/// CPU time the calling thread has used, ns.
pub fn thread_cpu_ns() -> u64 {
    let mut ts: libc::timespec = unsafe { zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
