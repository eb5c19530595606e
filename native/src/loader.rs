//! Opens the embedded BPF object, loads it and attaches its hooks, turning
//! every way that can fail into one sentence the user can act on.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;

use libbpf_rs::{Link, MapCore, MapHandle, Object, ObjectBuilder, OpenObject, PrintLevel};

use crate::errors::{Code, NtError};

static OBJECT: &[u8] = include_bytes!("../../bpf/nettrace.bpf.o");

/// Necessary conditions of the user's filter that the kernel checks before a record is sent.
#[derive(Default)]
pub struct KernelFilter {
    pub family: Option<u32>,
    pub pids: Option<Vec<u32>>,
    pub ports: Option<Vec<u16>>,
}

pub struct Options {
    pub kernel_filter: KernelFilter,
    pub ring_bytes: u32,
    pub max_sockets: u32,
    /// Hooks the caller turned off ("accept").
    pub disabled: Vec<String>,
}

pub struct Hook {
    pub name: &'static str,
    /// "attached", "fallback", "disabled" or "unavailable"
    pub status: &'static str,
    pub detail: String,
}

pub struct Loaded {
    pub object: Object,
    pub links: Vec<Link>,
    pub hooks: Vec<Hook>,
    /// The iter/tcp snapshot program's link: read on demand, not drained.
    pub snapshot: Link,
    /// The iter/udp one, and the per remote endpoint UDP counters.
    pub udp_snapshot: Link,
    pub udp_peers: MapHandle,
    /// (link id, program id) of each attachment, as bpftool shows them.
    pub kernel_ids: Vec<(u32, u32)>,
}

/// How accepted sockets get their owner.
#[derive(Clone, Copy, PartialEq)]
enum AcceptVia {
    Fexit,
    Syscalls,
    Off,
}

const ACCEPT_FEXIT: &[&str] = &["on_accept_fexit"];
const ACCEPT_SYSCALLS: &[&str] = &["on_accept4_exit", "on_accept_exit"];

pub fn load(opts: &Options) -> Result<Loaded, NtError> {
    check_privileges()?;
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(NtError::new(Code::NoBtf,
            "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); nettrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"));
    }
    if !opts.ring_bytes.is_power_of_two() || opts.ring_bytes < 4096 {
        return Err(NtError::new(Code::Invalid,
            format!("ring buffer size {} is not a power of two of at least 4096 bytes", opts.ring_bytes)));
    }
    if opts.max_sockets == 0 {
        return Err(NtError::new(Code::Invalid, "the socket table needs room for at least one socket"));
    }
    let too_many = |n: Option<usize>| n.is_some_and(|n| n > 1024);
    if too_many(opts.kernel_filter.pids.as_ref().map(Vec::len)) || too_many(opts.kernel_filter.ports.as_ref().map(Vec::len)) {
        return Err(NtError::new(Code::Invalid, "the kernel filter takes at most 1024 pids and 1024 ports"));
    }
    for name in &opts.disabled {
        if name != "accept" && name != "udp" {
            return Err(NtError::new(Code::Invalid,
                format!("unknown hook '{name}' (hooks that can be disabled: accept, udp)")));
        }
    }

    let mut via = if opts.disabled.iter().any(|h| h == "accept") { AcceptVia::Off } else { AcceptVia::Fexit };
    let mut fexit_failure = String::new();
    loop {
        match try_load(opts, via) {
            Ok((object, mut links)) => {
                let accept = match via {
                    AcceptVia::Fexit => Hook { name: "accept", status: "attached", detail: "fexit/inet_csk_accept".into() },
                    AcceptVia::Syscalls => Hook { name: "accept", status: "fallback",
                        detail: format!("tracepoints syscalls:sys_exit_accept{{,4}} (fexit unavailable: {fexit_failure})") },
                    AcceptVia::Off => Hook { name: "accept", status: "disabled", detail: "turned off by option".into() },
                };
                let state = Hook { name: "state", status: "attached", detail: "tp_btf/inet_sock_set_state".into() };
                let udp = if udp_off(opts) {
                    Hook { name: "udp", status: "disabled", detail: "turned off by option".into() }
                } else {
                    udp_hook()
                };
                let kernel_ids = links.iter().filter_map(|l| l.info().ok()).map(|i| (i.id, i.prog_id)).collect();
                // try_load attaches the iterators last, dump_tcp before dump_udp
                let udp_snapshot = links.pop().expect("the UDP snapshot iterator is attached");
                let snapshot = links.pop().expect("the TCP snapshot iterator is attached");
                let peers = object.maps().find(|m| m.name() == "udp_peers").expect("the object defines udp_peers");
                let udp_peers = MapHandle::try_from(&peers)
                    .map_err(|e| NtError::new(Code::Kernel, format!("cannot keep the udp_peers map: {e}")))?;
                return Ok(Loaded { object, links, hooks: vec![state, accept, udp], snapshot, udp_snapshot, udp_peers, kernel_ids });
            }
            Err(failure) if via == AcceptVia::Fexit && failure.program.as_deref() == Some("on_accept_fexit") => {
                fexit_failure = failure.error.message;
                via = AcceptVia::Syscalls;
            }
            Err(failure) => return Err(failure.error),
        }
    }
}

struct Failure {
    program: Option<String>,
    error: NtError,
}

fn try_load(opts: &Options, via: AcceptVia) -> Result<(Object, Vec<Link>), Failure> {
    let log = LogCapture::start();
    let mut open = ObjectBuilder::default()
        .open_memory(OBJECT)
        .map_err(|e| Failure { program: None, error: NtError::new(Code::Kernel, format!("cannot open nettrace's BPF object: {e}")) })?;
    configure(&mut open, opts, via).map_err(|error| Failure { program: None, error })?;
    let object = match open.load() {
        Ok(o) => o,
        Err(e) => {
            let lines = log.finish();
            return Err(classify_load_failure(&lines, &e.to_string()));
        }
    };
    drop(log);
    set_kernel_filter(&object, &opts.kernel_filter).map_err(|error| Failure { program: None, error })?;
    let mut links = Vec::new();
    let mut progs: Vec<_> = object.progs_mut().filter(|p| p.autoload()).collect();
    // the snapshot iterators go last, where load() expects them
    progs.sort_by_key(|p| {
        let iter = p.section().to_string_lossy().starts_with("iter/");
        (iter, if iter { p.name().to_string_lossy().into_owned() } else { String::new() })
    });
    let cgroup = cgroup_root();
    for prog in progs {
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        if section.starts_with("tracepoint/") {
            ensure_tracefs();
        }
        // a link is detached when dropped and coexists with others' programs (BPF_F_ALLOW_MULTI)
        let attached = match (section.starts_with("cgroup/"), &cgroup) {
            (true, Some(root)) => prog.attach_cgroup(root.fd.as_raw_fd()),
            (true, None) => continue, // configure() turned them off; udp_hook() says so
            (false, _) => prog.attach(),
        };
        match attached {
            Ok(link) => links.push(link),
            Err(e) => {
                let hook = prog.section().to_string_lossy().into_owned();
                return Err(Failure {
                    program: Some(name),
                    error: NtError::new(Code::NoHook, format!("this kernel lacks the hook {hook} that nettrace needs: {e}")),
                });
            }
        }
    }
    Ok((object, links))
}

fn configure(open: &mut OpenObject, opts: &Options, via: AcceptVia) -> Result<(), NtError> {
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        let entries = match name.as_str() {
            "events" => opts.ring_bytes,
            "socks" => opts.max_sockets,
            _ => continue,
        };
        map.set_max_entries(entries)
            .map_err(|e| NtError::new(Code::Invalid, format!("cannot size map {name}: {e}")))?;
    }
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let wanted = if ACCEPT_FEXIT.contains(&name.as_str()) {
            via == AcceptVia::Fexit
        } else if ACCEPT_SYSCALLS.contains(&name.as_str()) {
            via == AcceptVia::Syscalls
        } else {
            true
        };
        let cgroup_less = prog.section().to_string_lossy().starts_with("cgroup/") && cgroup_root_path().is_none();
        // the iter/udp snapshot stays: it lists UDP sockets without counting their traffic
        let udp_hook = name.starts_with("udp_");
        prog.set_autoload(wanted && !cgroup_less && !(udp_hook && udp_off(opts)));
    }
    Ok(())
}

/// Filled in before anything is attached, so no record escapes it.
fn set_kernel_filter(object: &Object, f: &KernelFilter) -> Result<(), NtError> {
    const FAMILY: u32 = 1;
    const PID: u32 = 2;
    const PORT: u32 = 4;
    let map = |name: &str| object.maps().find(|m| m.name() == name).expect("the object defines the filter maps");
    let fail = |e: libbpf_rs::Error| NtError::new(Code::Kernel, format!("cannot set the kernel filter: {e}"));
    let mut flags = 0;
    if let Some(family) = f.family {
        if family != 4 && family != 6 {
            return Err(NtError::new(Code::Invalid, format!("family {family} is neither 4 nor 6")));
        }
        flags |= FAMILY;
    }
    if let Some(pids) = &f.pids {
        for pid in pids {
            map("filter_pids").update(&pid.to_ne_bytes(), &[1], libbpf_rs::MapFlags::ANY).map_err(fail)?;
        }
        flags |= PID;
    }
    if let Some(ports) = &f.ports {
        for port in ports {
            map("filter_ports").update(&port.to_ne_bytes(), &[1], libbpf_rs::MapFlags::ANY).map_err(fail)?;
        }
        flags |= PORT;
    }
    if flags != 0 {
        let mut cfg = [0u8; 8];
        cfg[..4].copy_from_slice(&flags.to_ne_bytes());
        cfg[4..].copy_from_slice(&f.family.unwrap_or(0).to_ne_bytes());
        map("filter").update(&0u32.to_ne_bytes(), &cfg, libbpf_rs::MapFlags::ANY).map_err(fail)?;
    }
    Ok(())
}

fn classify_load_failure(log: &[String], err: &str) -> Failure {
    // libbpf names the program that failed: "prog 'on_state': BPF program load failed: ..."
    let program = log.iter().find_map(|l| {
        let rest = l.split("prog '").nth(1)?;
        if !l.contains("load failed") {
            return None;
        }
        Some(rest.split('\'').next()?.to_string())
    });
    let verifier_line = log
        .iter()
        .skip_while(|l| !l.contains("BEGIN PROG LOAD LOG"))
        .skip(1)
        .take_while(|l| !l.contains("END PROG LOAD LOG"))
        .flat_map(|l| l.lines())
        .filter(|l| !l.trim().is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time"))
        .last()
        .map(|l| l.trim().to_string());
    let error = match (&program, verifier_line) {
        (Some(p), Some(line)) => NtError::new(Code::Verifier,
            format!("the kernel's verifier rejected nettrace's program {p}: {line}")),
        (Some(p), None) => NtError::new(Code::Kernel,
            format!("the kernel refused to load nettrace's program {p}: {}", last_reason(log, err))),
        (None, _) => NtError::new(Code::Kernel,
            format!("the kernel refused nettrace's BPF object: {}", last_reason(log, err))),
    };
    Failure { program, error }
}

fn last_reason(log: &[String], err: &str) -> String {
    // "prog 'x': BPF program load failed: Operation not permitted" says why; later lines only echo it
    let why = |l: &&String| l.split("load failed: ").nth(1).map(|r| r.trim().to_string());
    log.iter()
        .find_map(|l| why(&l))
        .or_else(|| log.iter().rev().find(|l| l.contains("failed") || l.contains("error"))
            .map(|l| l.trim().trim_start_matches("libbpf: ").to_string()))
        .unwrap_or_else(|| err.to_string())
}

/// CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN, in the effective set.
fn check_privileges() -> Result<(), NtError> {
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

/// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup or, on hybrid systems, /sys/fs/cgroup/unified).
fn cgroup_root_path() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 2 && f[2] == "cgroup2").then(|| f[1].replace("\\040", " "))
    })
}

struct CgroupRoot {
    fd: std::fs::File,
}

/// The root cgroup: programs attached there run for the sockets of every process on the machine.
fn cgroup_root() -> Option<CgroupRoot> {
    std::fs::File::open(cgroup_root_path()?).ok().map(|fd| CgroupRoot { fd })
}

fn udp_off(opts: &Options) -> bool {
    opts.disabled.iter().any(|h| h == "udp")
}

fn udp_hook() -> Hook {
    match cgroup_root_path() {
        Some(root) => Hook { name: "udp", status: "attached",
            detail: format!("cgroup sock_create/sock_release/sendmsg/recvmsg at {root}, tp_btf/sock_send_length, tp_btf/sock_recv_length") },
        None => Hook { name: "udp", status: "unavailable",
            detail: "no cgroup v2 hierarchy is mounted: UDP sockets are counted but not seen open or close".into() },
    }
}

/// libbpf finds tracepoint ids in tracefs, which minimal systems leave unmounted.
fn ensure_tracefs() {
    if Path::new("/sys/kernel/tracing/events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists() {
        return;
    }
    let src = CString::new("nodev").unwrap();
    let dst = CString::new("/sys/kernel/tracing").unwrap();
    let fs = CString::new("tracefs").unwrap();
    unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
}

/// Collects libbpf's messages (the verifier log among them) while a load runs,
/// so failures can be explained; NETTRACE_DEBUG=1 also prints them.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn on_libbpf_message(level: PrintLevel, msg: String) {
    if std::env::var_os("NETTRACE_DEBUG").is_some() {
        eprint!("{msg}");
    }
    if level != PrintLevel::Debug {
        if let Ok(mut log) = LOG.lock() {
            log.push(msg);
        }
    }
}

struct LogCapture;

impl LogCapture {
    fn start() -> LogCapture {
        LOG.lock().map(|mut l| l.clear()).ok();
        let level = if std::env::var_os("NETTRACE_DEBUG").is_some() { PrintLevel::Debug } else { PrintLevel::Warn };
        libbpf_rs::set_print(Some((level, on_libbpf_message)));
        LogCapture
    }

    fn finish(self) -> Vec<String> {
        let lines = LOG.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
        drop(self);
        lines
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        libbpf_rs::set_print(None);
    }
}

/// Sum over CPUs of a per-CPU u64 counter.
pub fn read_percpu_sum(object: &Object, map_name: &str, key: u32) -> u64 {
    let Some(map) = object.maps().find(|m| m.name() == map_name) else { return 0 };
    let key = key.to_ne_bytes();
    match map.lookup_percpu(&key, libbpf_rs::MapFlags::ANY) {
        Ok(Some(values)) => values
            .iter()
            .filter_map(|v| v.get(..8).map(|b| u64::from_ne_bytes(b.try_into().unwrap())))
            .sum(),
        _ => 0,
    }
}

/// Hook runs the kernel skipped because the program was already running on
/// that CPU (a softirq interrupting it): records that never existed, so they
/// are counted beside the ring's drops.
pub fn read_missed(object: &Object) -> u64 {
    prog_infos(object).iter().map(|i| i.recursion_misses).sum()
}

/// What the kernel says of each loaded program (id, recursion misses...).
pub fn prog_infos(object: &Object) -> Vec<libbpf_rs::libbpf_sys::bpf_prog_info> {
    use std::os::fd::AsFd;
    object
        .progs()
        .filter(|p| p.autoload())
        .filter_map(|p| {
            let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
            let mut len = std::mem::size_of_val(&info) as u32;
            let ret = unsafe {
                libbpf_rs::libbpf_sys::bpf_obj_get_info_by_fd(p.as_fd().as_raw_fd(), (&mut info as *mut libbpf_rs::libbpf_sys::bpf_prog_info).cast(), &mut len)
            };
            (ret == 0).then_some(info)
        })
        .collect()
}

/// Entries of the socks map the kernel's LRU pushed out: inserted - deleted - live.
/// Counting live entries walks the map, so it is done only once the map could be
/// full: the LRU keeps up to 128 free entries per CPU aside and evicts before
/// the last ones are used.
pub fn read_evictions(object: &Object, max_sockets: u32) -> Option<u64> {
    let inserted = read_percpu_sum(object, "sock_counts", 0);
    let deleted = read_percpu_sum(object, "sock_counts", 1);
    let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
    if inserted.saturating_sub(deleted) + 128 * cpus < max_sockets as u64 {
        return Some(0);
    }
    let map = object.maps().find(|m| m.name() == "socks")?;
    let live = map.keys().count() as u64;
    Some(inserted.saturating_sub(deleted).saturating_sub(live))
}
