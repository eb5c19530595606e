//! What the state hook does instead on kernels whose tracing programs lack a
//! helper (bpf/compat.bpf.h chooses by the same BTF facts), added to the hook's
//! detail so that `tracer.hooks` says so.

use std::ffi::CString;

use libbpf_rs::libbpf_sys::{self, BTF_KIND_TYPEDEF};

use crate::hooks::Hook;

/// BPF_CALL_x leaves `btf_<helper>` typedefs in the kernel's BTF: (typedef, what nettrace does without it).
const SUBSTITUTES: &[(&str, &str)] = &[
    ("btf_bpf_get_socket_ptr_cookie",
     "socket ids are nettrace's own, not the kernel's cookies (no bpf_get_socket_cookie in tracing programs before 5.12)"),
    ("btf_bpf_get_current_task_btf", "owners come from the bpf_get_current_* helpers (no bpf_get_current_task_btf before 5.11)"),
];

pub fn annotate(hooks: &mut [Hook]) {
    let Some(state) = hooks.iter_mut().find(|h| h.name == "state" && h.status != "disabled") else { return };
    let btf = unsafe { libbpf_sys::btf__load_vmlinux_btf() };
    if btf.is_null() {
        return;
    }
    for (typedef, instead) in SUBSTITUTES {
        let name = CString::new(*typedef).unwrap();
        if unsafe { libbpf_sys::btf__find_by_name_kind(btf, name.as_ptr(), BTF_KIND_TYPEDEF) } <= 0 {
            state.detail.push_str(&format!("; {instead}"));
        }
    }
    unsafe { libbpf_sys::btf__free(btf) };
}
