//! Opens the embedded BPF object through its skeleton, loads it with the
//! programs of each hook's best way the kernel has (falling back to the next
//! way when the kernel refuses one) and attaches them, turning every way that
//! can fail into one sentence the user can act on.

use std::os::fd::AsRawFd;

use libbpf_rs::skel::OpenSkel;
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenMapMut};

use crate::bpf::{Bpf, OpenBpf};
use crate::errors::{Code, NtError};
use crate::hooks::{Choice, Hook, FEATURES, HOOKS};
use crate::kernel::{cgroup_root, check_privileges, ensure_tracefs, Kernel};
use crate::libbpf_log::LogCapture;
use crate::load_failure::{self, Failure};
use crate::options::{KernelFilter, Options};
use crate::skel::types::{nt_filter, nt_filter_flag};
use crate::skel::{NettraceMaps, OpenNettraceSkel};

/// A loaded and attached object, and what the tracer keeps of it.
pub struct Loaded {
    pub bpf: Bpf,
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
            Ok((bpf, links, snapshots)) => {
                let hooks = HOOKS.iter().zip(&choices)
                    .filter(|(def, _)| !def.on_request || opts.steering)
                    .map(|(def, c)| c.hook(def)).collect();
                let kernel_ids = links.iter().chain(&snapshots.0).chain(&snapshots.1).filter_map(|l| l.info().ok()).map(|i| (i.id, i.prog_id)).collect();
                let steering_on = HOOKS.iter().zip(&choices).any(|(def, c)| def.name == "steering" && c.way.is_some());
                let steering = match steering_on {
                    true => Some(crate::steering::SteeringMaps::from_maps(bpf.maps())
                        .map_err(|e| NtError::new(Code::Kernel, format!("cannot open the steering maps: {e}")))?),
                    false => None,
                };
                let map_ids = bpf.object().maps().filter_map(|m| m.info().ok()).map(|i| i.info.id).collect();
                let udp_peers = match HOOKS.iter().zip(&choices).any(|(def, c)| def.name == "udp" && c.way.is_some()) {
                    true => {
                        Some(MapHandle::try_from(&bpf.maps().udp_peers)
                            .map_err(|e| NtError::new(Code::Kernel, format!("cannot keep the udp_peers map: {e}")))?)
                    }
                    false => None,
                };
                let (snapshot, udp_snapshot) = snapshots;
                return Ok(Loaded { bpf, links, hooks, snapshot, udp_snapshot, udp_peers, kernel_ids, map_ids, steering });
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

fn try_load(opts: &Options, programs: &[&str]) -> Result<(Bpf, Vec<Link>, Snapshots), Failure> {
    let log = LogCapture::start();
    let mut open = OpenBpf::open()
        .map_err(|e| Failure::new(None, NtError::new(Code::Kernel, format!("cannot open nettrace's BPF object: {e}"))))?;
    open.configure(|skel| configure(skel, opts, programs)).map_err(|error| Failure::new(None, error))?;
    let mut bpf = match open.load() {
        Ok(o) => o,
        Err(e) => {
            let lines = log.finish();
            return Err(load_failure::classify(&lines, &e.to_string()));
        }
    };
    drop(log);
    set_kernel_filter(bpf.maps(), &opts.kernel_filter).map_err(|error| Failure::new(None, error))?;
    let mut links = Vec::new();
    let mut snapshots: Snapshots = (None, None);
    for prog in bpf.object_mut().progs_mut().filter(|p| p.autoload()) {
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
    Ok((bpf, links, snapshots))
}

/// Sizes the ring and the socket table, chooses the programs and writes the
/// load-time settings, through the skeleton's types of them.
fn configure(open: &mut OpenNettraceSkel, opts: &Options, programs: &[&str]) -> Result<(), NtError> {
    let size = |map: &mut OpenMapMut, entries: u32| {
        map.set_max_entries(entries)
            .map_err(|e| NtError::new(Code::Invalid, format!("cannot size map {}: {e}", map.name().to_string_lossy())))
    };
    size(&mut open.maps.events, opts.ring_bytes)?;
    size(&mut open.maps.socks, opts.max_sockets)?;
    for mut prog in open.open_object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        prog.set_autoload(programs.contains(&name.as_str()));
    }
    let filter = filter_setting(&opts.kernel_filter)?;
    let settings = open.maps.rodata_data.as_deref_mut()
        .ok_or_else(|| NtError::new(Code::Kernel, "cannot configure nettrace's BPF object: it has no .rodata"))?;
    settings.nt_events = opts.events;
    settings.nt_track = opts.track as u32;
    settings.nt_count_states = opts.count_states as u32;
    settings.nt_filter = filter;
    Ok(())
}

/// `struct nt_filter`: which conditions apply, the family and the network namespace.
fn filter_setting(f: &KernelFilter) -> Result<nt_filter, NtError> {
    if let Some(family) = f.family.filter(|&family| family != 4 && family != 6) {
        return Err(NtError::new(Code::Invalid, format!("family {family} is neither 4 nor 6")));
    }
    let conditions = [
        (f.family.is_some(), nt_filter_flag::NT_FILTER_FAMILY),
        (f.pids.is_some(), nt_filter_flag::NT_FILTER_PID),
        (f.ports.is_some(), nt_filter_flag::NT_FILTER_PORT),
        (f.netns.is_some(), nt_filter_flag::NT_FILTER_NETNS),
        (f.cgroups.is_some(), nt_filter_flag::NT_FILTER_CGROUP),
    ];
    let flags = conditions.iter().filter(|(on, _)| *on).fold(0, |flags, (_, flag)| flags | flag.0);
    Ok(nt_filter { flags, family: f.family.unwrap_or(0), netns: f.netns.unwrap_or(0), ..Default::default() })
}

/// The pid, port and cgroup sets of the kernel filter, filled in before anything is attached, so no record escapes it.
fn set_kernel_filter(maps: &NettraceMaps, f: &KernelFilter) -> Result<(), NtError> {
    let fail = |e: libbpf_rs::Error| NtError::new(Code::Kernel, format!("cannot set the kernel filter: {e}"));
    for pid in f.pids.iter().flatten() {
        maps.filter_pids.update(&pid.to_ne_bytes(), &[1], MapFlags::ANY).map_err(fail)?;
    }
    for port in f.ports.iter().flatten() {
        maps.filter_ports.update(&port.to_ne_bytes(), &[1], MapFlags::ANY).map_err(fail)?;
    }
    for id in f.cgroups.iter().flatten() {
        maps.filter_cgroups.update(&id.to_ne_bytes(), &[1], MapFlags::ANY).map_err(fail)?;
    }
    Ok(())
}
