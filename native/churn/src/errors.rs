//! Failures as the tracer's addon reports them: "[CODE] sentence", which
//! src/errors.ts turns into a NettraceError with that code. The generator
//! fails in only two ways: an option out of range, or the kernel refusing.

/// An option is out of range (EINVAL).
pub fn invalid(message: impl Into<String>) -> napi::Error {
    failure("EINVAL", message.into())
}

/// The kernel refused something (EKERNEL).
pub fn kernel(message: impl Into<String>) -> napi::Error {
    failure("EKERNEL", message.into())
}

fn failure(code: &str, message: String) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("[{code}] {message}"))
}
