//! Failures the user can act on, each one sentence. The code travels in the
//! message as "[CODE] sentence"; src/errors.ts turns it into NettraceError.code.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Not root, and not CAP_BPF + CAP_PERFMON.
    Perm,
    /// No /sys/kernel/btf/vmlinux.
    NoBtf,
    /// A hook nettrace cannot run without is missing from this kernel.
    NoHook,
    /// The verifier rejected a program.
    Verifier,
    /// An option is out of range.
    Invalid,
    /// Anything else the kernel refused.
    Kernel,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Perm => "EPERM",
            Code::NoBtf => "ENOBTF",
            Code::NoHook => "ENOHOOK",
            Code::Verifier => "EVERIFIER",
            Code::Invalid => "EINVAL",
            Code::Kernel => "EKERNEL",
        }
    }
}

#[derive(Debug)]
pub struct NtError {
    pub code: Code,
    pub message: String,
}

impl NtError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        NtError { code, message: message.into() }
    }
}

impl fmt::Display for NtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code.as_str(), self.message)
    }
}

impl From<NtError> for napi::Error {
    fn from(e: NtError) -> Self {
        napi::Error::new(napi::Status::GenericFailure, e.to_string())
    }
}
