//! Why the kernel refused a program: a verifier rejection only when the
//! verifier rejected it, otherwise the kernel's errno and what it means.

use crate::errors::{Code, NtError};

pub struct Failure {
    /// The program that failed to load or attach, when one did.
    pub program: Option<String>,
    pub error: NtError,
    /// The verifier gave up because a signal was pending on the loading thread
    /// (EAGAIN) or the load was interrupted (EINTR): trying again may succeed,
    /// and the program is not missing from this kernel.
    pub interrupted: bool,
}

impl Failure {
    pub fn new(program: Option<String>, error: NtError) -> Failure {
        Failure { program, error, interrupted: false }
    }
}

const ENOTSUPP: i32 = 524; // the kernel's own, not in libc

/// Errnos the verifier rejects a program with (the log says why).
const REJECTIONS: &[i32] = &[libc::EACCES, libc::EINVAL, libc::E2BIG, libc::EFAULT, libc::EPERM, ENOTSUPP];

/// The errno of a failed load, as libbpf-rs carries it ("... (os error 11)").
fn errno_of(err: &str) -> Option<i32> {
    err.rsplit("os error ").next().filter(|_| err.contains("os error "))?.trim_end_matches(')').parse().ok()
}

/// "EAGAIN (Resource temporarily unavailable)".
pub fn describe_errno(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        ENOTSUPP => return "ENOTSUPP (not supported by this kernel)".into(),
        _ => return format!("errno {errno} ({})", std::io::Error::from_raw_os_error(errno)),
    };
    let meaning = std::io::Error::from_raw_os_error(errno).to_string();
    format!("{name} ({})", meaning.split(" (os error").next().unwrap_or(&meaning))
}

pub fn classify(log: &[String], err: &str) -> Failure {
    // libbpf names the program that failed: "prog 'on_state': BPF program load failed: ..."
    let program = log.iter().find_map(|l| {
        let rest = l.split("prog '").nth(1)?;
        if !l.contains("load failed") {
            return None;
        }
        Some(rest.split('\'').next()?.to_string())
    });
    // the verifier's log arrives as one message, its lines between these markers
    let verifier_line = log
        .iter()
        .flat_map(|m| m.lines())
        .skip_while(|l| !l.contains("BEGIN PROG LOAD LOG"))
        .skip(1)
        .take_while(|l| !l.contains("END PROG LOAD LOG"))
        .filter(|l| !l.trim().is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time"))
        .last()
        .map(|l| l.trim().to_string());
    let errno = errno_of(err);
    let interrupted = matches!(errno, Some(libc::EAGAIN) | Some(libc::EINTR));
    let rejected = errno.is_none_or(|e| REJECTIONS.contains(&e));
    let error = match (&program, verifier_line) {
        (Some(p), _) if interrupted => NtError::new(Code::Kernel, format!(
            "the kernel stopped verifying nettrace's program {p} before it finished: {}, which it answers when a \
             signal is pending on the loading thread, not a rejection",
            describe_errno(errno.unwrap()))),
        (Some(p), Some(line)) if rejected => NtError::new(Code::Verifier,
            format!("the kernel's verifier rejected nettrace's program {p}: {line}")),
        (Some(p), _) => NtError::new(Code::Kernel,
            format!("the kernel refused to load nettrace's program {p}: {}", reason(errno, log, err))),
        (None, _) => NtError::new(Code::Kernel,
            format!("the kernel refused nettrace's BPF object: {}", reason(errno, log, err))),
    };
    Failure { program, error, interrupted }
}

fn reason(errno: Option<i32>, log: &[String], err: &str) -> String {
    if let Some(e) = errno {
        return describe_errno(e);
    }
    // "prog 'x': BPF program load failed: Operation not permitted" says why; later lines only echo it
    let why = |l: &&String| l.split("load failed: ").nth(1).map(|r| r.trim().to_string());
    log.iter()
        .find_map(|l| why(&l))
        .or_else(|| log.iter().rev().find(|l| l.contains("failed") || l.contains("error"))
            .map(|l| l.trim().trim_start_matches("libbpf: ").to_string()))
        .unwrap_or_else(|| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(errno_name: &str, verifier: &str) -> Vec<String> {
        vec![
            format!("libbpf: prog 'on_state': BPF program load failed: -{errno_name}\n"),
            format!("libbpf: prog 'on_state': -- BEGIN PROG LOAD LOG --\n{verifier}\nprocessed 2 insns\n-- END PROG LOAD LOG --\n"),
        ]
    }

    #[test]
    fn a_pending_signal_is_no_rejection() {
        let f = classify(&log("EAGAIN", "0: (79) r9 = *(u64 *)(r1 +16)"), "Resource temporarily unavailable (os error 11)");
        assert!(f.interrupted);
        assert_eq!(f.error.code, Code::Kernel);
        assert!(f.error.message.contains("EAGAIN (Resource temporarily unavailable)"), "{}", f.error.message);
    }

    #[test]
    fn an_unknown_helper_is_a_rejection() {
        let f = classify(&log("EINVAL", "unknown func bpf_get_socket_cookie#46"), "Invalid argument (os error 22)");
        assert!(!f.interrupted);
        assert_eq!(f.error.code, Code::Verifier);
        assert_eq!(f.error.message, "the kernel's verifier rejected nettrace's program on_state: unknown func bpf_get_socket_cookie#46");
    }

    #[test]
    fn out_of_memory_names_the_errno() {
        let f = classify(&log("ENOMEM", "0: (79) r9 = *(u64 *)(r1 +16)"), "Cannot allocate memory (os error 12)");
        assert_eq!(f.error.code, Code::Kernel);
        assert_eq!(f.error.message, "the kernel refused to load nettrace's program on_state: ENOMEM (Cannot allocate memory)");
    }
}
