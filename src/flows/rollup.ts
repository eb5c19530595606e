/** Totals per process, per remote host and per (process, remote host): nethogs, iftop and bandwhich. */
import { Flow } from './table';

export interface Rollup {
  /** "pid/comm", a remote address, or "pid/comm > address". */
  key: string;
  pid: number | null;
  comm: string | null;
  host: string | null;
  flows: number;
  tx_bytes: number;
  rx_bytes: number;
  tx_rate: number;
  rx_rate: number;
}

type By = 'process' | 'host' | 'process_host';

function keyOf(f: Flow, by: By): Pick<Rollup, 'key' | 'pid' | 'comm' | 'host'> {
  const proc = f.pid === null ? '-' : `${f.pid}/${f.comm ?? ''}`;
  const pid = by === 'host' ? null : f.pid;
  const comm = by === 'host' ? null : f.comm;
  const host = by === 'process' ? null : f.daddr;
  const key = by === 'process' ? proc : by === 'host' ? f.daddr : `${proc} > ${f.daddr}`;
  return { key, pid, comm, host };
}

/**
 * An unconnected UDP socket talks to many hosts: per host it counts as one
 * flow per remote endpoint, with that endpoint's bytes. Without any, it has no host.
 */
function perRemote(f: Flow): Flow[] {
  if (f.proto !== 'udp' || f.dport !== 0) return [f];
  return (f.peers ?? []).map((p) => ({ ...f, ...p, peers: undefined }));
}

/** Sorted by combined rate, then combined bytes. Listeners have no remote host and count only per process. */
export function rollup(flows: Flow[], by: By): Rollup[] {
  const out = new Map<string, Rollup>();
  const parts = by === 'process' ? flows : flows.filter((f) => f.state !== 'LISTEN').flatMap(perRemote);
  for (const f of parts) {
    const k = keyOf(f, by);
    let r = out.get(k.key);
    if (!r) out.set(k.key, (r = { ...k, flows: 0, tx_bytes: 0, rx_bytes: 0, tx_rate: 0, rx_rate: 0 }));
    r.flows++;
    r.tx_bytes += f.tx_bytes;
    r.rx_bytes += f.rx_bytes;
    r.tx_rate += f.tx_rate;
    r.rx_rate += f.rx_rate;
  }
  return [...out.values()].sort((a, b) => b.tx_rate + b.rx_rate - (a.tx_rate + a.rx_rate) || b.tx_bytes + b.rx_bytes - (a.tx_bytes + a.rx_bytes));
}
