//! The object's hooks, each with its ways to attach, best first, and what the
//! kernel must offer for each: the choice of programs to load comes from here.

use std::path::Path;

use libbpf_rs::libbpf_sys::{BTF_KIND_FUNC, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF};

use crate::kernel::{cgroup2_mount, ensure_tracefs, Kernel};
use crate::options::Options;
use crate::skel::types::nt_kind;

/// How a hook stands once loaded, as `tracer.hooks` lists it.
pub struct Hook {
    pub name: &'static str,
    /// "attached", "fallback", "disabled" or "unavailable"
    pub status: &'static str,
    pub detail: String,
}

/// One way a hook can attach: its programs, and what the kernel must have for them.
pub struct Way {
    pub programs: &'static [&'static str],
    pub attach: &'static str,
    /// The kernel feature a user can turn off to skip this way ("fexit").
    pub feature: Option<&'static str>,
    pub needs: fn(&Kernel) -> Result<(), String>,
}

/// A hook of the object and its ways, best first; the later ones are fallbacks.
pub struct HookDef {
    pub name: &'static str,
    /// Off unless asked for (the steering hooks run per packet), and then listed in the hooks.
    pub on_request: bool,
    /// Whether what the caller asked for needs the hook: one that nothing needs is not attached.
    pub needed: fn(&Options) -> bool,
    pub ways: &'static [Way],
}

fn always(_: &Options) -> bool {
    true
}

pub const HOOKS: &[HookDef] = &[
    HookDef { name: "state", on_request: false, needed: always, ways: &[Way {
        programs: &["on_state"], attach: "tp_btf/inet_sock_set_state", feature: None,
        needs: |k| k.has_type("btf_trace_inet_sock_set_state", BTF_KIND_TYPEDEF)
            .then_some(()).ok_or_else(|| "this kernel's BTF has no inet_sock_set_state tracepoint (Linux 4.16+)".into()),
    }] },
    HookDef { name: "accept", on_request: false, needed: |o| o.track || o.wants(nt_kind::NT_ACCEPT), ways: &[
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
    HookDef { name: "udp", on_request: false, needed: |o| o.track || o.wants(nt_kind::NT_UDP), ways: &[
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
    HookDef { name: "dns", on_request: false, needed: |o| o.wants(nt_kind::NT_DNS), ways: &[Way {
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

pub const FEATURES: &[&str] = &["fexit"];

/// Where one hook stands while loading: the way being tried, and why earlier ways were skipped.
pub struct Choice {
    pub way: Option<usize>,
    pub skipped: Vec<String>,
    pub by_option: bool,
    pub unneeded: bool,
}

impl Choice {
    /// The first way from `from` that the options allow and the kernel has.
    pub fn pick(def: &HookDef, from: usize, opts: &Options, kernel: &Kernel, mut skipped: Vec<String>) -> Choice {
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

    pub fn hook(&self, def: &HookDef) -> Hook {
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

#[cfg(test)]
mod tests {
    use libbpf_rs::skel::OpenSkel;

    use super::HOOKS;
    use crate::bpf::OpenBpf;

    /// The object's programs as they are named in it; opening reads the ELF only, without root.
    fn programs() -> Vec<String> {
        let mut open = OpenBpf::open().expect("the embedded object opens");
        let mut names: Vec<String> = open.configure(|skel| skel.open_object().progs().map(|p| p.name().to_string_lossy().into_owned()).collect());
        names.sort();
        names
    }

    /// A program no hook names would never load; a name no program has would fail every load.
    #[test]
    fn the_hooks_name_every_program_of_the_object_and_no_other() {
        let mut listed: Vec<String> = HOOKS.iter().flat_map(|h| h.ways).flat_map(|w| w.programs).map(|p| p.to_string()).collect();
        listed.sort();
        // a program may serve several ways (udp_sent and udp_received are in both of the udp hook's)
        listed.dedup();
        assert_eq!(listed, programs());
    }
}
