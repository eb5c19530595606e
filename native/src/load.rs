//! Opens the embedded BPF object, loads it and attaches its hooks, turning
//! every way that can fail into one sentence the user can act on.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;

use libbpf_rs::libbpf_sys::{self, BTF_KIND_FUNC, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF};
use libbpf_rs::{Link, MapCore, MapHandle, Object, ObjectBuilder, OpenObject, PrintLevel};

use crate::errors::{Code, NtError};
use crate::load_failure::{self, Failure};

static OBJECT: &[u8] = include_bytes!("../../bpf/nettrace.bpf.o");

/// Necessary conditions of the user's filter that the kernel checks before a record is sent.
#[derive(Default)]
pub struct KernelFilter {
    pub family: Option<u32>,
    pub pids: Option<Vec<u32>>,
    pub ports: Option<Vec<u16>>,
    /// Inode of the one network namespace whose sockets are wanted.
    pub netns: Option<u32>,
    /// cgroup v2 ids: the owner's cgroup is one of these.
    pub cgroups: Option<Vec<u64>>,
}

pub struct Options {
    pub kernel_filter: KernelFilter,
    pub ring_bytes: u32,
    pub max_sockets: u32,
    /// Hooks ("state", "accept", "snapshot") or kernel features ("fexit") the caller turned off.
    pub disabled: Vec<String>,
    /// Attach the per-packet receive-steering hooks (steering.bpf.h).
    pub steering: bool,
    /// `1 << kind` of each record kind that goes to the ring (settings::EVENT_KINDS).
    pub events: u32,
    /// Keep the kernel's socket table (owners, lifetimes, byte bases), which
    /// connect, accept and close records and the snapshots' owners need.
    pub track: bool,
    /// Count every TCP transition in the kernel, per (old, new) state.
    pub count_states: bool,
}

impl Options {
    fn wants(&self, kind: u32) -> bool {
        self.events & crate::settings::event_bit(kind) != 0
    }
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
    /// The iter/tcp snapshot program's link: read on demand, not drained. None when unavailable.
    pub snapshot: Option<Link>,
    /// The iter/udp one, and the per remote endpoint UDP counters (None when unavailable).
    pub udp_snapshot: Option<Link>,
    pub udp_peers: Option<MapHandle>,
    /// (link id, program id) of each attachment, as bpftool shows them.
    pub kernel_ids: Vec<(u32, u32)>,
    pub steering: Option<crate::steering::SteeringMaps>,
    /// Ids of the object's maps, as `bpftool map show` lists them.
    pub map_ids: Vec<u32>,
}

/// One way a hook can attach: its programs, and what the kernel must have for them.
struct Way {
    programs: &'static [&'static str],
    attach: &'static str,
    /// The kernel feature a user can turn off to skip this way ("fexit").
    feature: Option<&'static str>,
    needs: fn(&Kernel) -> Result<(), String>,
}

/// A hook of the object and its ways, best first; the later ones are fallbacks.
struct HookDef {
    name: &'static str,
    /// Off unless asked for (the steering hooks run per packet), and then listed in the hooks.
    on_request: bool,
    /// Whether what the caller asked for needs the hook: one that nothing needs is not attached.
    needed: fn(&Options) -> bool,
    ways: &'static [Way],
}

fn always(_: &Options) -> bool {
    true
}

const HOOKS: &[HookDef] = &[
    HookDef { name: "state", on_request: false, needed: always, ways: &[Way {
        programs: &["on_state"], attach: "tp_btf/inet_sock_set_state", feature: None,
        needs: |k| k.has_type("btf_trace_inet_sock_set_state", BTF_KIND_TYPEDEF)
            .then_some(()).ok_or_else(|| "this kernel's BTF has no inet_sock_set_state tracepoint (Linux 4.16+)".into()),
    }] },
    HookDef { name: "accept", on_request: false, needed: |o| o.track || o.wants(3), ways: &[
        Way {
            programs: &["on_accept_fexit"], attach: "fexit/inet_csk_accept", feature: Some("fexit"),
            needs: |k| k.has_type("inet_csk_accept", BTF_KIND_FUNC)
                .then_some(()).ok_or_else(|| "this kernel's BTF has no function inet_csk_accept".into()),
        },
        Way {
            programs: &["on_accept4_exit", "on_accept_exit"], attach: "tracepoints syscalls:sys_exit_accept{,4}", feature: None,
            needs: |_| {
                ensure_tracefs();
                let has = |tp: &str| ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
                    .iter().any(|t| Path::new(&format!("{t}/events/syscalls/{tp}")).exists());
                (has("sys_exit_accept") && has("sys_exit_accept4"))
                    .then_some(()).ok_or_else(|| "this kernel has no syscalls:sys_exit_accept{,4} tracepoints (CONFIG_FTRACE_SYSCALLS)".into())
            },
        },
    ] },
    HookDef { name: "snapshot", on_request: false, needed: always, ways: &[Way {
        programs: &["dump_tcp", "dump_udp"], attach: "iter/tcp, iter/udp", feature: None,
        needs: |k| (k.has_type("bpf_iter__tcp", BTF_KIND_STRUCT) && k.has_type("bpf_iter__udp", BTF_KIND_STRUCT))
            .then_some(()).ok_or_else(|| "this kernel has no iter/tcp and iter/udp BPF iterators (Linux 5.9+)".into()),
    }] },
    HookDef { name: "udp", on_request: false, needed: |o| o.track || o.wants(5), ways: &[
        Way {
            programs: &["udp_create", "udp_release", "udp_sendto4", "udp_sendto6", "udp_recvfrom4", "udp_recvfrom6",
                "udp_sent", "udp_received"],
            attach: "cgroup sock_create/sock_release/sendmsg/recvmsg at the cgroup v2 root, tp_btf/sock_send_length, \
                     tp_btf/sock_recv_length",
            feature: None,
            needs: |k| {
                cgroup2_mount().ok_or("no cgroup v2 hierarchy is mounted")?;
                udp_counting(k)
            },
        },
        Way {
            programs: &["udp_sent", "udp_received"],
            attach: "tp_btf/sock_send_length, tp_btf/sock_recv_length (UDP sockets counted, not seen open or close)",
            feature: None,
            needs: udp_counting,
        },
    ] },
    HookDef { name: "dns", on_request: false, needed: |o| o.wants(6), ways: &[Way {
        programs: &["dns_egress", "dns_ingress"],
        attach: "cgroup_skb/egress and cgroup_skb/ingress at the cgroup v2 root",
        feature: None,
        needs: |_| cgroup2_mount().map(|_| ()).ok_or_else(|| "no cgroup v2 hierarchy is mounted".into()),
    }] },
    HookDef { name: "steering", on_request: true, needed: always, ways: &[Way {
        programs: &["steer_ingress", "steer_recv", "steer_rx_entry", "steer_receive_entry", "steer_list_entry",
            "steer_gro_entry", "steer_gro_frags_entry"],
        attach: "cgroup_skb/ingress at the cgroup v2 root, tp_btf/sock_recv_length, tp_btf/netif_rx_entry, \
                 netif_receive_skb_entry, netif_receive_skb_list_entry, napi_gro_receive_entry, napi_gro_frags_entry",
        feature: None,
        needs: |k| {
            cgroup2_mount().ok_or("no cgroup v2 hierarchy is mounted")?;
            k.has_type("btf_trace_sock_recv_length", BTF_KIND_TYPEDEF)
                .then_some(()).ok_or_else(|| "this kernel has no sock_recv_length tracepoint (Linux 6.3+)".into())
        },
    }] },
];

fn udp_counting(k: &Kernel) -> Result<(), String> {
    (k.has_type("btf_trace_sock_send_length", BTF_KIND_TYPEDEF) && k.has_type("btf_trace_sock_recv_length", BTF_KIND_TYPEDEF))
        .then_some(()).ok_or_else(|| "this kernel has no sock_send_length/sock_recv_length tracepoints (Linux 6.3+)".into())
}

/// The attach description, with the cgroup v2 root named where it applies.
fn where_attached(attach: &str) -> String {
    match cgroup2_mount() {
        Some(root) => attach.replace("the cgroup v2 root", &format!("the cgroup v2 root {root}")),
        None => attach.to_string(),
    }
}

/// Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems.
/// In a container with its own cgroup namespace the first mount is the container's cgroup:
/// a mount of the host's hierarchy (a DaemonSet's hostPath) is preferred, known by its root
/// having no cgroup.freeze (the root cgroup cannot be frozen, every other can).
fn cgroup2_mount() -> Option<String> {
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
fn cgroup_root() -> libbpf_rs::Result<std::fs::File> {
    let dir = cgroup2_mount().ok_or_else(|| libbpf_rs::Error::from(std::io::Error::new(
        std::io::ErrorKind::NotFound, "no cgroup v2 hierarchy is mounted")))?;
    std::fs::File::open(&dir).map_err(libbpf_rs::Error::from)
}

pub const FEATURES: &[&str] = &["fexit"];

/// What the running kernel offers, read once before loading.
struct Kernel {
    btf: *mut libbpf_sys::btf,
}

impl Kernel {
    fn probe() -> Result<Kernel, NtError> {
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

    fn has_type(&self, name: &str, kind: u32) -> bool {
        let name = CString::new(name).unwrap();
        unsafe { libbpf_sys::btf__find_by_name_kind(self.btf, name.as_ptr(), kind) > 0 }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        unsafe { libbpf_sys::btf__free(self.btf) };
    }
}

/// Where one hook stands while loading: the way being tried, and why earlier ways were skipped.
struct Choice {
    way: Option<usize>,
    skipped: Vec<String>,
    by_option: bool,
    unneeded: bool,
}

impl Choice {
    /// The first way from `from` that the options allow and the kernel has.
    fn pick(def: &HookDef, from: usize, opts: &Options, kernel: &Kernel, mut skipped: Vec<String>) -> Choice {
        let off = |why: &str, unneeded| Choice { way: None, skipped: vec![why.into()], by_option: true, unneeded };
        if def.on_request && !opts.steering {
            return off("not requested", false);
        }
        if opts.disabled.iter().any(|d| d == def.name) {
            return off("turned off by option", false);
        }
        if !(def.needed)(opts) {
            return off("not needed by the events asked for", true);
        }
        for (i, way) in def.ways.iter().enumerate().skip(from) {
            let off = way.feature.filter(|f| opts.disabled.iter().any(|d| d == f));
            let verdict = match off {
                Some(f) => Err(format!("{f} turned off by option")),
                None => (way.needs)(kernel),
            };
            match verdict {
                Ok(()) => return Choice { way: Some(i), skipped, by_option: false, unneeded: false },
                Err(why) => skipped.push(format!("{}: {why}", way.attach)),
            }
        }
        Choice { way: None, skipped, by_option: false, unneeded: false }
    }

    fn hook(&self, def: &HookDef) -> Hook {
        match self.way {
            Some(0) => Hook { name: def.name, status: "attached", detail: where_attached(def.ways[0].attach) },
            Some(i) => Hook { name: def.name, status: "fallback",
                detail: format!("{} (unavailable: {})", where_attached(def.ways[i].attach), self.skipped.join("; ")) },
            None if self.unneeded => Hook { name: def.name, status: "unneeded", detail: self.skipped.join("; ") },
            None if self.by_option => Hook { name: def.name, status: "disabled", detail: "turned off by option".into() },
            None => Hook { name: def.name, status: "unavailable", detail: self.skipped.join("; ") },
        }
    }
}

pub fn load(opts: &Options) -> Result<Loaded, NtError> {
    check_privileges()?;
    if !opts.ring_bytes.is_power_of_two() || opts.ring_bytes < 4096 {
        return Err(NtError::new(Code::Invalid,
            format!("ring buffer size {} is not a power of two of at least 4096 bytes", opts.ring_bytes)));
    }
    if opts.max_sockets == 0 {
        return Err(NtError::new(Code::Invalid, "the socket table needs room for at least one socket"));
    }
    let too_many = |n: Option<usize>| n.is_some_and(|n| n > 1024);
    let kf = &opts.kernel_filter;
    if too_many(kf.pids.as_ref().map(Vec::len)) || too_many(kf.ports.as_ref().map(Vec::len)) || too_many(kf.cgroups.as_ref().map(Vec::len)) {
        return Err(NtError::new(Code::Invalid, "the kernel filter takes at most 1024 pids, 1024 ports and 1024 cgroups"));
    }
    for name in &opts.disabled {
        if !HOOKS.iter().any(|h| h.name == name) && !FEATURES.contains(&name.as_str()) {
            let known: Vec<&str> = HOOKS.iter().map(|h| h.name).chain(FEATURES.iter().copied()).collect();
            return Err(NtError::new(Code::Invalid,
                format!("unknown hook '{name}' (hooks and features that can be disabled: {})", known.join(", "))));
        }
    }

    let kernel = Kernel::probe()?;
    let mut choices: Vec<Choice> = HOOKS.iter().map(|def| Choice::pick(def, 0, opts, &kernel, Vec::new())).collect();
    let mut interruptions = 0;
    loop {
        // HOOKS[0], state, fills the socket table every other hook reads: nothing works without it
        if choices[0].way.is_none() {
            return Err(NtError::new(Code::NoHook,
                format!("nettrace cannot trace without its state hook (tp_btf/inet_sock_set_state): {}", choices[0].skipped.join("; "))));
        }
        let programs: Vec<&str> = HOOKS.iter().zip(&choices)
            .filter_map(|(def, c)| c.way.map(|w| def.ways[w].programs))
            .flatten().copied().collect();
        match try_load(opts, &programs) {
            Ok((object, links, snapshots)) => {
                let hooks = HOOKS.iter().zip(&choices)
                    .filter(|(def, _)| !def.on_request || opts.steering)
                    .map(|(def, c)| c.hook(def)).collect();
                let kernel_ids = links.iter().chain(&snapshots.0).chain(&snapshots.1).filter_map(|l| l.info().ok()).map(|i| (i.id, i.prog_id)).collect();
                let steering_on = HOOKS.iter().zip(&choices).any(|(def, c)| def.name == "steering" && c.way.is_some());
                let steering = match steering_on {
                    true => Some(crate::steering::SteeringMaps::from_object(&object)
                        .map_err(|e| NtError::new(Code::Kernel, format!("cannot open the steering maps: {e}")))?),
                    false => None,
                };
                let map_ids = object.maps().filter_map(|m| m.info().ok()).map(|i| i.info.id).collect();
                let udp_peers = match HOOKS.iter().zip(&choices).any(|(def, c)| def.name == "udp" && c.way.is_some()) {
                    true => {
                        let peers = object.maps().find(|m| m.name() == "udp_peers").expect("the object defines udp_peers");
                        Some(MapHandle::try_from(&peers)
                            .map_err(|e| NtError::new(Code::Kernel, format!("cannot keep the udp_peers map: {e}")))?)
                    }
                    false => None,
                };
                let (snapshot, udp_snapshot) = snapshots;
                return Ok(Loaded { object, links, hooks, snapshot, udp_snapshot, udp_peers, kernel_ids, map_ids, steering });
            }
            // not the kernel's answer about the program: a signal cut the verifier short, so load again
            Err(f) if f.interrupted && interruptions < 3 => interruptions += 1,
            Err(f) if f.interrupted => return Err(f.error),
            Err(Failure { program: Some(program), error, .. }) => {
                // that way is missing from this kernel: fall back to the hook's next one, or go without the hook
                let owner = |h: &usize| choices[*h].way.is_some_and(|w| HOOKS[*h].ways[w].programs.contains(&program.as_str()));
                let Some(h) = (0..HOOKS.len()).find(owner) else { return Err(error) };
                let def = &HOOKS[h];
                let w = choices[h].way.unwrap();
                if h == 0 && w + 1 == def.ways.len() {
                    return Err(error); // the state hook has nowhere to fall back to: its own failure says most
                }
                let mut skipped = std::mem::take(&mut choices[h].skipped);
                skipped.push(format!("{}: {}", def.ways[w].attach, error.message));
                choices[h] = Choice::pick(def, w + 1, opts, &kernel, skipped);
            }
            Err(failure) => return Err(failure.error),
        }
    }
}

/// The iter/tcp and iter/udp links, read on demand rather than drained.
type Snapshots = (Option<Link>, Option<Link>);

fn try_load(opts: &Options, programs: &[&str]) -> Result<(Object, Vec<Link>, Snapshots), Failure> {
    let log = LogCapture::start();
    let mut open = ObjectBuilder::default()
        .open_memory(OBJECT)
        .map_err(|e| Failure::new(None, NtError::new(Code::Kernel, format!("cannot open nettrace's BPF object: {e}"))))?;
    configure(&mut open, opts, programs).map_err(|error| Failure::new(None, error))?;
    let object = match open.load() {
        Ok(o) => o,
        Err(e) => {
            let lines = log.finish();
            return Err(load_failure::classify(&lines, &e.to_string()));
        }
    };
    drop(log);
    set_kernel_filter(&object, &opts.kernel_filter).map_err(|error| Failure::new(None, error))?;
    let mut links = Vec::new();
    let mut snapshots: Snapshots = (None, None);
    for prog in object.progs_mut().filter(|p| p.autoload()) {
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        if section.starts_with("tracepoint/") {
            ensure_tracefs();
        }
        let attached = match section.starts_with("cgroup") {
            true => cgroup_root().and_then(|root| prog.attach_cgroup(root.as_raw_fd())),
            false => prog.attach(),
        };
        match attached {
            Ok(link) if name == "dump_tcp" => snapshots.0 = Some(link),
            Ok(link) if name == "dump_udp" => snapshots.1 = Some(link),
            Ok(link) => links.push(link),
            Err(e) => {
                return Err(Failure::new(Some(name), NtError::new(Code::NoHook, format!("this kernel cannot attach {section}: {e}"))));
            }
        }
    }
    Ok((object, links, snapshots))
}

fn configure(open: &mut OpenObject, opts: &Options, programs: &[&str]) -> Result<(), NtError> {
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
        prog.set_autoload(programs.contains(&name.as_str()));
    }
    let settings = [
        ("nt_events", opts.events.to_ne_bytes().to_vec()),
        ("nt_track", (opts.track as u32).to_ne_bytes().to_vec()),
        ("nt_count_states", (opts.count_states as u32).to_ne_bytes().to_vec()),
        ("nt_filter", filter_setting(&opts.kernel_filter)?.to_vec()),
    ];
    crate::settings::write(open, OBJECT, &settings)
        .map_err(|e| NtError::new(Code::Kernel, format!("cannot configure nettrace's BPF object: {e}")))
}

const FILTER_FAMILY: u32 = 1;
const FILTER_PID: u32 = 2;
const FILTER_PORT: u32 = 4;
const FILTER_NETNS: u32 = 8;
const FILTER_CGROUP: u32 = 16;

/// `struct nt_filter`: which conditions apply, the family and the network namespace.
fn filter_setting(f: &KernelFilter) -> Result<[u8; 16], NtError> {
    let mut flags = 0;
    if let Some(family) = f.family {
        if family != 4 && family != 6 {
            return Err(NtError::new(Code::Invalid, format!("family {family} is neither 4 nor 6")));
        }
        flags |= FILTER_FAMILY;
    }
    if f.pids.is_some() {
        flags |= FILTER_PID;
    }
    if f.ports.is_some() {
        flags |= FILTER_PORT;
    }
    if f.netns.is_some() {
        flags |= FILTER_NETNS;
    }
    if f.cgroups.is_some() {
        flags |= FILTER_CGROUP;
    }
    let mut cfg = [0u8; 16];
    cfg[..4].copy_from_slice(&flags.to_ne_bytes());
    cfg[4..8].copy_from_slice(&f.family.unwrap_or(0).to_ne_bytes());
    cfg[8..12].copy_from_slice(&f.netns.unwrap_or(0).to_ne_bytes());
    Ok(cfg)
}

/// The pid, port and cgroup sets of the kernel filter, filled in before anything is attached, so no record escapes it.
fn set_kernel_filter(object: &Object, f: &KernelFilter) -> Result<(), NtError> {
    let map = |name: &str| object.maps().find(|m| m.name() == name).expect("the object defines the filter maps");
    let fail = |e: libbpf_rs::Error| NtError::new(Code::Kernel, format!("cannot set the kernel filter: {e}"));
    for pid in f.pids.iter().flatten() {
        map("filter_pids").update(&pid.to_ne_bytes(), &[1], libbpf_rs::MapFlags::ANY).map_err(fail)?;
    }
    for port in f.ports.iter().flatten() {
        map("filter_ports").update(&port.to_ne_bytes(), &[1], libbpf_rs::MapFlags::ANY).map_err(fail)?;
    }
    for id in f.cgroups.iter().flatten() {
        map("filter_cgroups").update(&id.to_ne_bytes(), &[1], libbpf_rs::MapFlags::ANY).map_err(fail)?;
    }
    Ok(())
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

/// What the kernel counts of the hooks' runs, summed over programs.
#[derive(Default)]
pub struct HookRuns {
    /// Runs the kernel skipped because the program was already running on
    /// that CPU (a softirq interrupting it): records that never existed, so
    /// they are counted beside the ring's drops.
    pub missed: u64,
    /// Runs of the state hook (counted only while kernel.bpf_stats_enabled is on).
    pub state: u64,
    /// Runs of the accept hook(s), likewise.
    pub accept: u64,
}

pub fn read_hook_runs(object: &Object) -> HookRuns {
    use std::os::fd::{AsFd, AsRawFd};
    let mut runs = HookRuns::default();
    for p in object.progs().filter(|p| p.autoload()) {
        let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of_val(&info) as u32;
        let ret = unsafe {
            libbpf_rs::libbpf_sys::bpf_obj_get_info_by_fd(p.as_fd().as_raw_fd(), (&mut info as *mut libbpf_rs::libbpf_sys::bpf_prog_info).cast(), &mut len)
        };
        if ret != 0 {
            continue;
        }
        runs.missed += info.recursion_misses;
        let name = p.name().to_string_lossy();
        if name == "on_state" {
            runs.state += info.run_cnt;
        } else if name.starts_with("on_accept") {
            runs.accept += info.run_cnt;
        }
    }
    runs
}

/// The ids of the object's loaded programs, as the kernel numbers them.
pub fn prog_ids(object: &Object) -> Vec<u32> {
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
            (ret == 0).then_some(info.id)
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

/// A map of the loaded object, held apart from it: read from JavaScript's thread while the drain owns the object.
pub fn map_handle(object: &Object, name: &str) -> Result<MapHandle, NtError> {
    let map = object.maps().find(|m| m.name() == name).ok_or_else(|| NtError::new(Code::Kernel, format!("the BPF object has no map {name}")))?;
    MapHandle::try_from(&map).map_err(|e| NtError::new(Code::Kernel, format!("cannot keep the {name} map: {e}")))
}

/// Every entry of a per-CPU u64 array, summed over CPUs, in key order.
pub fn percpu_sums(map: &MapHandle) -> Vec<u64> {
    (0..map.max_entries())
        .map(|key| match map.lookup_percpu(&key.to_ne_bytes(), libbpf_rs::MapFlags::ANY) {
            Ok(Some(values)) => values.iter().filter_map(|v| v.get(..8)).map(|b| u64::from_ne_bytes(b.try_into().unwrap())).sum(),
            _ => 0,
        })
        .collect()
}
