/** Totals per process, per remote host and per (process, remote host): nethogs, iftop and bandwhich; and per route. */
import { Flow } from './flow';

interface Traffic {
  flows: number;
  tx_bytes: number;
  rx_bytes: number;
  tx_rate: number;
  rx_rate: number;
}

export interface Rollup extends Traffic {
  /** "pid/comm", a remote address, or "pid/comm > address". */
  key: string;
  pid: number | null;
  comm: string | null;
  host: string | null;
  /** Grouped by container: the container's name (see Container.name), '-' for flows of no known cgroup. */
  container?: string;
  /** The DNS name the host was looked up by (by one of its flows' processes), when one was seen. */
  rname: string | null;
}

/** Traffic per output interface (`ifname`) or per next hop (`gateway`, null for directly connected destinations). */
export interface RouteRollup extends Traffic {
  /** The interface name, or the gateway address ("direct" when there is none). */
  key: string;
  ifname: string | null;
  gateway: string | null;
}

type By = 'process' | 'host' | 'process_host' | 'container';

/** The key a flow is summed under. */
function keyText(f: Flow, by: By): string {
  if (by === 'container') return f.container?.name ?? '-';
  if (by === 'host') return f.daddr;
  const proc = f.pid === null ? '-' : `${f.pid}/${f.comm ?? ''}`;
  return by === 'process' ? proc : `${proc} > ${f.daddr}`;
}

/** The row of a key, from the first flow summed under it. */
function keyOf(f: Flow, by: By, key: string): Pick<Rollup, 'key' | 'pid' | 'comm' | 'host' | 'container' | 'rname'> {
  if (by === 'container') return { key, pid: null, comm: null, host: null, container: key, rname: null };
  const pid = by === 'host' ? null : f.pid;
  const comm = by === 'host' ? null : f.comm;
  const host = by === 'process' ? null : f.daddr;
  return { key, pid, comm, host, rname: by === 'process' ? null : (f.rname ?? null) };
}

/**
 * An unconnected UDP socket talks to many hosts: per host it counts as one
 * flow per remote endpoint, with that endpoint's bytes. Without any, it has no host.
 */
function perRemote(f: Flow): Flow[] {
  if (f.proto !== 'udp' || f.dport !== 0) return [f];
  return (f.peers ?? []).map((p) => ({ ...f, ...p, peers: undefined }));
}

/**
 * Sums flows into one row per key, sorted by combined rate, then combined bytes. A row is made only for a new key:
 * at churn a table of tens of thousands of flows falls into a few rows, and an object per flow kept V8 busy.
 */
function accumulate<K extends { key: string }>(flows: Flow[], keyFor: (f: Flow) => string, rowOf: (f: Flow, key: string) => K): (K & Traffic)[] {
  const out = new Map<string, K & Traffic>();
  for (const f of flows) {
    const key = keyFor(f);
    let r = out.get(key);
    if (!r) out.set(key, (r = { ...rowOf(f, key), flows: 0, tx_bytes: 0, rx_bytes: 0, tx_rate: 0, rx_rate: 0 }));
    r.flows++;
    r.tx_bytes += f.tx_bytes;
    r.rx_bytes += f.rx_bytes;
    r.tx_rate += f.tx_rate;
    r.rx_rate += f.rx_rate;
  }
  return [...out.values()].sort((a, b) => b.tx_rate + b.rx_rate - (a.tx_rate + a.rx_rate) || b.tx_bytes + b.rx_bytes - (a.tx_bytes + a.rx_bytes));
}

/** The flow table at one moment, with its rollups. */
export interface FlowSnapshot {
  type: 'snapshot';
  /** Wall clock, ms since the epoch. */
  ts: number;
  flows: Flow[];
  processes: Rollup[];
  hosts: Rollup[];
  process_hosts: Rollup[];
}

export function flowSnapshot(flows: Flow[], ts: number): FlowSnapshot {
  return { type: 'snapshot', ts, flows, processes: rollup(flows, 'process'), hosts: rollup(flows, 'host'), process_hosts: rollup(flows, 'process_host') };
}

/** Listeners have no remote host and count only per process (or container). */
export function rollup(flows: Flow[], by: By): Rollup[] {
  if (by === 'process' || by === 'container') return accumulate(flows, (f) => keyText(f, by), (f, k) => keyOf(f, by, k));
  const remote = flows.filter((f) => f.state !== 'LISTEN').flatMap(perRemote);
  const rows = accumulate(remote, (f) => keyText(f, by), (f, k) => keyOf(f, by, k));
  // a host is named when any of its flows is: the first flow to it may predate the lookup
  const named = new Map<string, string>();
  for (const f of remote) if (f.rname) named.set(keyText(f, by), f.rname);
  for (const r of rows) r.rname ??= named.get(r.key) ?? null;
  return rows;
}

/** Per interface and per gateway, over the flows whose route is known: what `top` and the metrics show per route. */
export function routeRollups(flows: Flow[]): { interfaces: RouteRollup[]; gateways: RouteRollup[] } {
  const routed = flows.filter((f) => f.ifname !== null);
  return {
    interfaces: accumulate(routed, (f) => f.ifname!, (f, key) => ({ key, ifname: f.ifname, gateway: null })),
    gateways: accumulate(routed, (f) => f.gateway ?? 'direct', (f, key) => ({ key, ifname: null, gateway: f.gateway })),
  };
}
