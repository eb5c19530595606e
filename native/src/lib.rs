//! nettrace's native addon: loads the BPF programs, drains their ring buffer
//! on its own thread and hands JavaScript whole batches of raw records.

mod batch;
mod bpf;
mod bpfstats;
mod compat;
mod conntrack;
mod credits;
mod drain;
mod errors;
mod hooks;
mod kernel;
mod libbpf_log;
mod load;
mod load_failure;
mod load_thread;
mod maps;
mod netns;
mod options;
mod ring;
mod route;
mod settings;
mod skel;
mod sink;
mod steering;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::batch::Batch;
use crate::drain::{Counters, Drain};
use crate::errors::{Code, NtError};
use crate::sink::{BatchFn, JsSink};
use crate::skel::types::nt_kind;

/// What the kernel checks before sending a record: each given field must hold.
#[napi(object)]
pub struct NativeKernelFilter {
    /// 4 or 6.
    #[napi(ts_type = "4 | 6")]
    pub family: Option<u32>,
    /// The owner's pid is one of these (records with no known owner fail).
    pub pids: Option<Vec<u32>>,
    /// The local or the remote port is one of these.
    pub ports: Option<Vec<u32>>,
    /// The socket's network namespace inode is this one.
    pub netns: Option<u32>,
    /// The owner's cgroup v2 id is one of these (records with no known owner fail).
    pub cgroups: Option<Vec<i64>>,
}

#[napi(object)]
pub struct NativeOptions {
    pub kernel_filter: Option<NativeKernelFilter>,
    /// Ring buffer bytes: a power of two, at least 4096. Default 16 MiB.
    pub ring_bytes: Option<u32>,
    /// How often the drain thread delivers, 1 to 50 ms. Default 10.
    pub flush_ms: Option<u32>,
    /// Sockets tracked at once in the kernel (LRU beyond). Default 65536.
    pub max_sockets: Option<u32>,
    /// Hooks to leave off: "accept".
    pub disable: Option<Vec<String>>,
    /// A batch goes to JavaScript once it holds this many bytes, before the timer: 4 KiB to 64 MiB. Default 4 MiB.
    pub batch_bytes: Option<u32>,
    /// Attach the per-packet receive-steering hooks. Default false.
    pub steering: Option<bool>,
    /// A file of the namespace `kernel_filter.netns` (/run/netns/NAME, /proc/PID/ns/net): snapshots are read inside it.
    pub netns_path: Option<String>,
    /// Record kinds that go to the ring: "state", "connect", "accept", "close", "udp", "dns". Default all but dns.
    pub events: Option<Vec<String>>,
    /// Keep the kernel's socket table (owners and totals for connect, accept and close
    /// records and for the snapshots). Default true; the record kinds but udp need it.
    pub track_sockets: Option<bool>,
    /// Count every TCP state transition in the kernel (read with stateCounts()). Default false.
    pub count_states: Option<bool>,
}

#[napi(object)]
pub struct NativeStats {
    pub records: f64,
    pub bytes: f64,
    /// Bytes the kernel has put in the ring since it was made, record headers and padding
    /// included (its producer position): what every record cost the ring, delivered or not.
    pub ring_produced: f64,
    pub batches: f64,
    pub drops: f64,
    /// The same drops by record kind.
    pub drops_by_kind: DropsByKind,
    /// Hook runs the kernel skipped because the hook was already running on that CPU.
    pub missed: f64,
    /// Sockets the kernel's socket table (LRU, `maxSockets`) forgot to make room: their later records lack an owner.
    pub evictions: f64,
    /// The kernel's own count of hook runs (bpf_prog_info.run_cnt), kept only while
    /// kernel.bpf_stats_enabled is on; final after stop.
    pub hook_runs: HookRuns,
}

#[napi(object)]
pub struct DropsByKind {
    pub state: f64,
    pub connect: f64,
    pub accept: f64,
    pub close: f64,
    pub udp: f64,
    pub dns: f64,
}

#[napi(object)]
pub struct HookRuns {
    pub state: f64,
    pub accept: f64,
}

#[napi(object)]
pub struct NativeHook {
    pub name: String,
    /// `unneeded`: nothing the tracer was asked for needs it, so it was not attached.
    #[napi(ts_type = "'attached' | 'fallback' | 'disabled' | 'unavailable' | 'unneeded'")]
    pub status: String,
    pub detail: String,
}

/// Kernel object ids of what this tracer attached, as `bpftool prog/link show` lists them.
#[napi(object)]
pub struct KernelIds {
    pub programs: Vec<u32>,
    pub links: Vec<u32>,
    pub maps: Vec<u32>,
}

#[napi]
pub struct NativeTracer {
    drain: Option<Drain>,
    counters: Arc<Counters>,
    hooks: Vec<NativeHook>,
    kernel_ids: Vec<(u32, u32)>,
    map_ids: Vec<u32>,
    snapshot: Option<libbpf_rs::Link>,
    steering: Option<steering::SteeringMaps>,
    udp_snapshot: Option<libbpf_rs::Link>,
    udp_peers: Option<libbpf_rs::MapHandle>,
    netns: Option<netns::Netns>,
    state_counts: Option<libbpf_rs::MapHandle>,
    dns_counts: Option<libbpf_rs::MapHandle>,
    credits: Arc<credits::Credits>,
}

#[napi]
impl NativeTracer {
    /// Loads and attaches everything, then starts draining into `on_batch(buffer, last)`.
    #[napi(factory)]
    pub fn open(options: NativeOptions, on_batch: Function<(Buffer, bool), ()>) -> Result<NativeTracer> {
        let ring_bytes = options.ring_bytes.unwrap_or(16 << 20);
        let flush_ms = options.flush_ms.unwrap_or(10);
        if !(1..=50).contains(&flush_ms) {
            return Err(NtError::new(Code::Invalid, format!("flush interval {flush_ms} ms is outside 1..50 ms")).into());
        }
        let batch_bytes = options.batch_bytes.unwrap_or(drain::DEFAULT_BATCH_BYTES);
        if !(4096..=64 << 20).contains(&batch_bytes) {
            return Err(NtError::new(Code::Invalid, format!("batch size {batch_bytes} bytes is outside 4 KiB..64 MiB")).into());
        }
        let kf = options.kernel_filter.unwrap_or(NativeKernelFilter { family: None, pids: None, ports: None, netns: None, cgroups: None });
        let netns = match (&options.netns_path, kf.netns) {
            (Some(path), Some(inode)) => Some(netns::Netns::open(path, inode)?),
            (None, None) => None,
            _ => return Err(NtError::new(Code::Invalid, "netnsPath and kernelFilter.netns go together").into()),
        };
        let ports = match kf.ports {
            Some(p) => Some(
                p.into_iter()
                    .map(|p| u16::try_from(p).map_err(|_| NtError::new(Code::Invalid, format!("port {p} is out of range"))))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let events = match options.events {
            None => settings::default_events(),
            Some(names) => names.iter().try_fold(0, |m, name| {
                match settings::EVENT_KINDS.iter().find(|(n, _)| n == name) {
                    Some((_, k)) => Ok(m | settings::event_bit(*k)),
                    None => Err(NtError::new(Code::Invalid, format!("unknown event kind '{name}' (kinds: state, connect, accept, close, udp, dns)"))),
                }
            })?,
        };
        let track = options.track_sockets.unwrap_or(true);
        if !track && events & !(settings::event_bit(nt_kind::NT_UDP) | settings::event_bit(nt_kind::NT_DNS)) != 0 {
            return Err(NtError::new(Code::Invalid, "state, connect, accept and close records need the socket table (trackSockets)").into());
        }
        let count_states = options.count_states.unwrap_or(false);
        if count_states && (kf.pids.is_some() || kf.cgroups.is_some()) {
            return Err(NtError::new(Code::Invalid, "transitions are counted in the kernel without owners: a pid or cgroup condition cannot apply to them").into());
        }
        let opts = options::Options {
            // cgroup ids are inode numbers: JavaScript numbers hold them exactly
            kernel_filter: options::KernelFilter {
                family: kf.family,
                pids: kf.pids,
                ports,
                netns: kf.netns,
                cgroups: kf.cgroups.map(|c| c.into_iter().map(|id| id as u64).collect()),
            },
            ring_bytes,
            max_sockets: options.max_sockets.unwrap_or(65536),
            disabled: options.disable.unwrap_or_default(),
            steering: options.steering.unwrap_or(false),
            events,
            track,
            count_states,
        };
        let tsfn: BatchFn = on_batch
            .build_threadsafe_function::<(Batch, bool)>()
            .callee_handled::<false>()
            .max_queue_size::<4>()
            .build_callback(|ctx| Ok((batch::to_js(&ctx.env, ctx.value.0)?, ctx.value.1)))?;
        let load::Loaded { bpf, links, mut hooks, snapshot, udp_snapshot, udp_peers, kernel_ids, map_ids, steering } = load_thread::load(&opts)?;
        compat::annotate(&mut hooks);
        let state_counts = match count_states {
            true => Some(maps::map_handle(&bpf.maps().state_counts)?),
            false => None,
        };
        let dns_counts = match hooks.iter().any(|h| h.name == "dns" && h.status == "attached") {
            true => Some(maps::map_handle(&bpf.maps().dns_counts)?),
            false => None,
        };
        let hooks = hooks
            .iter()
            .map(|h| NativeHook { name: h.name.into(), status: h.status.into(), detail: h.detail.clone() })
            .collect();
        let counters = Arc::new(Counters::default());
        let credits = Arc::new(credits::Credits::default());
        let sink = JsSink::start(tsfn, credits.clone())
            .map_err(|e| NtError::new(Code::Kernel, format!("cannot start handing batches over: {e}")))?;
        let drain = Drain::spawn(bpf, links, ring_bytes, opts.max_sockets, Duration::from_millis(flush_ms as u64), batch_bytes, counters.clone(), sink)
            .map_err(|e| NtError::new(Code::Kernel, format!("cannot start draining the ring buffer: {e}")))?;
        Ok(NativeTracer { drain: Some(drain), counters, hooks, kernel_ids, map_ids, snapshot, steering, udp_snapshot, udp_peers, state_counts, dns_counts, credits, netns })
    }

    /// Hands a batch back once it has been read: the next one is sent only
    /// while fewer than two are out (see credits.rs). Call it from a later turn
    /// of the event loop than the one that got the batch.
    #[napi]
    pub fn release(&self) {
        self.credits.give();
    }

    /// Detaches everything; the last batch arrives with `last` set. Safe to call twice.
    #[napi]
    pub fn stop(&mut self) {
        self.credits.close();
        self.snapshot.take();
        self.steering.take();
        self.udp_snapshot.take();
        self.udp_peers.take();
        self.state_counts.take();
        self.dns_counts.take();
        if let Some(drain) = self.drain.take() {
            drain.stop();
        }
    }

    /// Every TCP socket of this network namespace now, as packed `struct nt_flow` records.
    #[napi]
    pub fn snapshot(&self) -> Result<Buffer> {
        read_iter(self.snapshot.as_ref(), self.drain.is_some(), "iter/tcp", self.netns.as_ref())
    }

    /// Every UDP socket of this network namespace now, as packed `struct nt_udp_flow` records.
    #[napi]
    pub fn snapshot_udp(&self) -> Result<Buffer> {
        read_iter(self.udp_snapshot.as_ref(), self.drain.is_some(), "iter/udp", self.netns.as_ref())
    }

    /// Traffic of unconnected UDP sockets per remote endpoint: packed
    /// (`struct nt_udp_peer`, `struct nt_udp_peer_bytes`) pairs; empty when the udp hook is off.
    #[napi]
    pub fn udp_peers(&self) -> Result<Buffer> {
        use libbpf_rs::MapCore;
        if self.drain.is_none() {
            return Err(NtError::new(Code::Invalid, "the tracer is stopped").into());
        }
        let Some(map) = self.udp_peers.as_ref() else { return Ok(Vec::new().into()) };
        let mut out = Vec::new();
        for key in map.keys() {
            // an entry the LRU pushed out between the two calls is simply gone
            if let Ok(Some(value)) = map.lookup(&key, libbpf_rs::MapFlags::ANY) {
                out.extend_from_slice(&key);
                out.extend_from_slice(&value);
            }
        }
        Ok(out.into())
    }

    /// TCP transitions counted in the kernel since tracing began (only with countStates):
    /// entry `old * 16 + new` for each pair of states as the kernel numbers them.
    #[napi]
    pub fn state_counts(&self) -> Result<Vec<f64>> {
        let map = match (&self.drain, &self.state_counts) {
            (None, _) => return Err(NtError::new(Code::Invalid, "the tracer is stopped").into()),
            (_, None) => return Err(NtError::new(Code::Invalid, "transitions are counted only with countStates").into()),
            (_, Some(map)) => map,
        };
        Ok(maps::percpu_sums(map).into_iter().map(|n| n as f64).collect())
    }

    /// What the dns hook counted since tracing began: [messages copied to the ring,
    /// IP fragments of DNS messages (not copied)]; zeros when the hook is not attached.
    #[napi]
    pub fn dns_counts(&self) -> Result<Vec<f64>> {
        match (&self.drain, &self.dns_counts) {
            (None, _) => Err(NtError::new(Code::Invalid, "the tracer is stopped").into()),
            (_, None) => Ok(vec![0.0, 0.0]),
            (_, Some(map)) => Ok(maps::percpu_sums(map).into_iter().map(|n| n as f64).collect()),
        }
    }

    /// The receive-steering counters now (only with the steering option).
    #[napi]
    pub fn steering(&self) -> Result<steering::NativeSteering> {
        Ok(self.steering_maps()?.read())
    }

    /// Drops what the steering maps hold of these sockets (closed and reported).
    #[napi]
    pub fn steering_forget(&self, cookies: Vec<f64>) -> Result<()> {
        let cookies: Vec<u64> = cookies.into_iter().map(|c| c as u64).collect();
        self.steering_maps()?.forget(&cookies);
        Ok(())
    }

    fn steering_maps(&self) -> Result<&steering::SteeringMaps> {
        match (&self.drain, &self.steering) {
            (None, _) => Err(NtError::new(Code::Invalid, "the tracer is stopped").into()),
            (_, None) => Err(NtError::new(Code::Invalid, "steering was not enabled when the tracer started").into()),
            (_, Some(maps)) => Ok(maps),
        }
    }

    #[napi]
    pub fn stats(&self) -> NativeStats {
        let c = &self.counters;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        NativeStats {
            records: c.records.load(Ordering::Relaxed) as f64,
            bytes: c.bytes.load(Ordering::Relaxed) as f64,
            ring_produced: n(&c.produced),
            batches: c.batches.load(Ordering::Relaxed) as f64,
            drops: c.drops.load(Ordering::Relaxed) as f64,
            missed: c.missed.load(Ordering::Relaxed) as f64,
            evictions: c.evictions.load(Ordering::Relaxed) as f64,
            drops_by_kind: DropsByKind {
                state: n(&c.drops_by_kind[0]),
                connect: n(&c.drops_by_kind[1]),
                accept: n(&c.drops_by_kind[2]),
                close: n(&c.drops_by_kind[3]),
                udp: n(&c.drops_by_kind[4]),
                dns: n(&c.drops_by_kind[5]),
            },
            hook_runs: HookRuns { state: n(&c.state_runs), accept: n(&c.accept_runs) },
        }
    }

    #[napi(getter)]
    pub fn kernel_ids(&self) -> KernelIds {
        KernelIds {
            programs: self.kernel_ids.iter().map(|(_, p)| *p).collect(),
            links: self.kernel_ids.iter().map(|(l, _)| *l).collect(),
            maps: self.map_ids.clone(),
        }
    }

    #[napi(getter)]
    pub fn hooks(&self) -> Vec<NativeHook> {
        self.hooks.iter().map(|h| NativeHook { name: h.name.clone(), status: h.status.clone(), detail: h.detail.clone() }).collect()
    }
}

fn read_iter(link: Option<&libbpf_rs::Link>, running: bool, what: &str, netns: Option<&netns::Netns>) -> Result<Buffer> {
    use std::io::Read;
    let link = link.ok_or_else(|| match running {
        true => NtError::new(Code::NoHook, format!("the socket snapshot ({what}) is unavailable on this tracer (see its hooks)")),
        false => NtError::new(Code::Invalid, "the tracer is stopped"),
    })?;
    if let Some(ns) = netns {
        return ns.read_iter(link).map(Into::into).map_err(|e| NtError::new(Code::Kernel, format!("cannot read the socket snapshot: {e}")).into());
    }
    let mut out = Vec::new();
    libbpf_rs::Iter::new(link)
        .and_then(|mut it| it.read_to_end(&mut out).map_err(Into::into))
        .map_err(|e| NtError::new(Code::Kernel, format!("cannot read the socket snapshot: {e}")))?;
    Ok(out.into())
}
