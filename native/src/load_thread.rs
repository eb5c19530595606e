//! Loads on a thread of its own with every signal blocked.
//!
//! The kernel's verifier gives up with EAGAIN whenever a signal is pending on
//! the thread that loads a program, and libbpf retries only a few times. A CPU
//! profiler signals the JavaScript thread every sampling interval (V8 sends
//! SIGPROF by tgkill), and a process may be signalled by anyone: loading on the
//! caller's thread would fail, or send hooks to their fallbacks, for reasons
//! that have nothing to do with the kernel. A thread that blocks every signal
//! never has one pending (the kernel delivers process signals to a thread that
//! accepts them), so nothing interrupts its loads; the caller's thread keeps
//! its signals and handles them as usual.

use crate::errors::{Code, NtError};
use crate::load::{self, Loaded};
use crate::options::Options;

pub fn load(opts: &Options) -> Result<Loaded, NtError> {
    std::thread::scope(|scope| {
        let loading = std::thread::Builder::new()
            .name("nettrace-load".into())
            .spawn_scoped(scope, || {
                block_all_signals()?;
                load::load(opts)
            })
            .map_err(|e| NtError::new(Code::Kernel, format!("cannot start the thread that loads nettrace's programs: {e}")))?;
        loading
            .join()
            .unwrap_or_else(|_| Err(NtError::new(Code::Kernel, "loading nettrace's programs failed unexpectedly (the loading thread panicked)")))
    })
}

fn block_all_signals() -> Result<(), NtError> {
    // SIGKILL and SIGSTOP cannot be blocked, and need not be: neither leaves a signal pending
    let rc = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut())
    };
    match rc {
        0 => Ok(()),
        e => Err(NtError::new(Code::Kernel,
            format!("cannot block signals on the thread that loads nettrace's programs: {}", std::io::Error::from_raw_os_error(e)))),
    }
}
