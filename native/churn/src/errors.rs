//! Failures as the tracer's addon reports them: "[CODE] sentence", which
//! src/errors.ts turns into a NettraceError with that code. The generator
//! fails in only two ways: an option out of range, or the kernel refusing.

use std::io::Error as IoError;

/// An option is out of range (EINVAL).
pub fn invalid(message: impl Into<String>) -> napi::Error {
    failure("EINVAL", message.into())
}

/// The kernel refused something (EKERNEL).
pub fn kernel(message: impl Into<String>) -> napi::Error {
    failure("EKERNEL", message.into())
}

/// The kernel refused `what`, with errno's text.
pub fn os_error(what: &str) -> napi::Error {
    kernel(format!("{what}: {}", IoError::last_os_error()))
}

fn failure(code: &str, message: String) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("[{code}] {message}"))
}
