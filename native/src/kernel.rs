//! What the running system offers nettrace before anything is loaded: the
//! kernel's BTF and ring buffer, the privileges to load, where cgroup v2 and
//! tracefs are.

use std::ffi::CString;
use std::path::Path;

use libbpf_rs::libbpf_sys;

use crate::errors::{Code, NtError};

/// Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems.
/// In a container with its own cgroup namespace the first mount is the container's cgroup:
/// a mount of the host's hierarchy (a DaemonSet's hostPath) is preferred, known by its root
/// having no cgroup.freeze (the root cgroup cannot be frozen, every other can).
pub fn cgroup2_mount() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let dirs: Vec<String> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (_, dir, fs) = (f.next()?, f.next()?, f.next()?);
            (fs == "cgroup2").then(|| dir.to_string())
        })
        .collect();
    let root = dirs.iter().find(|d| !Path::new(&format!("{d}/cgroup.freeze")).exists());
    root.or(dirs.first()).cloned()
}

/// The cgroup v2 root: a cgroup program attached there sees every socket of every descendant cgroup.
pub fn cgroup_root() -> libbpf_rs::Result<std::fs::File> {
    let dir = cgroup2_mount().ok_or_else(|| libbpf_rs::Error::from(std::io::Error::new(
        std::io::ErrorKind::NotFound, "no cgroup v2 hierarchy is mounted")))?;
    std::fs::File::open(&dir).map_err(libbpf_rs::Error::from)
}

/// What the running kernel offers, read once before loading.
pub struct Kernel {
    btf: *mut libbpf_sys::btf,
}

impl Kernel {
    pub fn probe() -> Result<Kernel, NtError> {
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(NtError::new(Code::NoBtf,
                "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); nettrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"));
        }
        // 0: the kernel does not know the map type; < 0: the probe itself could not run, so let the load decide
        if unsafe { libbpf_sys::libbpf_probe_bpf_map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null()) } == 0 {
            return Err(NtError::new(Code::Kernel,
                "this kernel has no BPF ring buffer (Linux 5.8+), which nettrace delivers every record through"));
        }
        let btf = unsafe { libbpf_sys::btf__load_vmlinux_btf() };
        if btf.is_null() {
            return Err(NtError::new(Code::NoBtf, "cannot read this kernel's BTF from /sys/kernel/btf/vmlinux"));
        }
        Ok(Kernel { btf })
    }

    pub fn has_type(&self, name: &str, kind: u32) -> bool {
        let name = CString::new(name).unwrap();
        unsafe { libbpf_sys::btf__find_by_name_kind(self.btf, name.as_ptr(), kind) > 0 }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        unsafe { libbpf_sys::btf__free(self.btf) };
    }
}

/// CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN, in the effective set.
pub fn check_privileges() -> Result<(), NtError> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(NtError::new(Code::Perm,
            "nettrace needs root (or CAP_BPF and CAP_PERFMON) to load its BPF programs"))
    }
}

/// libbpf finds tracepoint ids in tracefs, which minimal systems leave unmounted.
pub fn ensure_tracefs() {
    if Path::new("/sys/kernel/tracing/events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists() {
        return;
    }
    let src = CString::new("nodev").unwrap();
    let dst = CString::new("/sys/kernel/tracing").unwrap();
    let fs = CString::new("tracefs").unwrap();
    unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
}
