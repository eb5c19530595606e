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

    /// libbpf's messages as its print callback gets them, when the verifier refused on_state.
    fn rejected_on_state() -> Vec<String> {
        vec![
            "libbpf: prog 'on_state': BPF program load failed: -EACCES\n".into(),
            "libbpf: prog 'on_state': -- BEGIN PROG LOAD LOG --\n\
             0: R1=ctx() R10=fp0\n\
             ; int BPF_PROG(on_state, const struct sock *sk, int oldstate, int newstate) @ tcp_state.bpf.c:254\n\
             0: (79) r6 = *(u64 *)(r1 +0)          ; R1=ctx() R6_w=ptr_sock()\n\
             1: (61) r2 = *(u32 *)(r6 +4096)\n\
             R6 invalid mem access 'scalar'\n\
             processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n\
             -- END PROG LOAD LOG --\n".into(),
            "libbpf: prog 'on_state': failed to load: -EACCES\n".into(),
            "libbpf: failed to load object 'nettrace_bpf'\n".into(),
        ]
    }

    #[test]
    fn the_verifiers_last_word_is_the_reason() {
        let f = classify(&rejected_on_state(), "Permission denied (os error 13)");
        assert_eq!(f.program.as_deref(), Some("on_state"));
        assert!(!f.interrupted);
        assert_eq!(f.error.code, Code::Verifier);
        assert_eq!(f.error.message, "the kernel's verifier rejected nettrace's program on_state: R6 invalid mem access 'scalar'");
    }

    #[test]
    fn a_map_the_kernel_refuses_fails_the_whole_object() {
        let log = vec![
            "libbpf: map 'events': failed to create: -EPERM\n".to_string(),
            "libbpf: failed to load object 'nettrace_bpf'\n".to_string(),
        ];
        let f = classify(&log, "Operation not permitted (os error 1)");
        assert_eq!(f.program, None);
        assert_eq!(f.error.code, Code::Kernel);
        assert_eq!(f.error.message, "the kernel refused nettrace's BPF object: EPERM (Operation not permitted)");
    }

    #[test]
    fn a_program_refused_without_a_verifier_log_is_no_rejection() {
        // fexit on a kernel without trampolines: the program is refused before the verifier says anything
        let log = vec![
            "libbpf: prog 'on_accept_fexit': BPF program load failed: -ENOTSUPP\n".to_string(),
            "libbpf: prog 'on_accept_fexit': failed to load: -ENOTSUPP\n".to_string(),
            "libbpf: failed to load object 'nettrace_bpf'\n".to_string(),
        ];
        let f = classify(&log, "Unknown error 524 (os error 524)");
        assert_eq!(f.program.as_deref(), Some("on_accept_fexit"));
        assert_eq!(f.error.code, Code::Kernel);
        assert_eq!(f.error.message, "the kernel refused to load nettrace's program on_accept_fexit: ENOTSUPP (not supported by this kernel)");
    }

    #[test]
    fn an_interrupted_load_may_be_tried_again() {
        let f = classify(&log("EINTR", "0: (79) r9 = *(u64 *)(r1 +16)"), "Interrupted system call (os error 4)");
        assert!(f.interrupted);
        assert_eq!(f.error.code, Code::Kernel);
        assert!(f.error.message.starts_with("the kernel stopped verifying nettrace's program on_state before it finished: EINTR (Interrupted system call)"),
            "{}", f.error.message);
    }

    #[test]
    fn without_an_errno_the_log_says_why() {
        let log = vec!["libbpf: prog 'on_state': BPF program load failed: Operation not permitted\n".to_string()];
        let f = classify(&log, "failed to load BPF object");
        assert_eq!(f.error.code, Code::Kernel);
        assert_eq!(f.error.message, "the kernel refused to load nettrace's program on_state: Operation not permitted");
    }

    #[test]
    fn errnos_are_named_with_their_meaning() {
        assert_eq!(describe_errno(libc::E2BIG), "E2BIG (Argument list too long)");
        assert_eq!(describe_errno(524), "ENOTSUPP (not supported by this kernel)");
        assert_eq!(errno_of("Resource temporarily unavailable (os error 11)"), Some(libc::EAGAIN));
        assert_eq!(errno_of("failed to load BPF object"), None);
    }
}
