/** What `nettrace top` shows, derived from a frozen copy of the flow table: the three views and their totals. */
import { Flow } from '../../../flows/flow';
import { rollup, Rollup, routeRollups, RouteRollup } from '../../../flows/rollup';

export type SortKey = 'rate' | 'bytes' | 'name';
export const SORT_KEYS: readonly SortKey[] = ['rate', 'bytes', 'name'];

export interface Totals {
  /** Bytes per second, summed over the connections shown. */
  up: number;
  down: number;
  flows: number;
}

/** What the first pane groups by: owners (processes), or their containers and services (key c). */
export type Grouping = 'process' | 'container';

export interface TopModel {
  grouping: Grouping;
  processes: Rollup[];
  /** Per container or service (see Container.name); the first pane shows these when grouping by container. */
  containers: Rollup[];
  hosts: Rollup[];
  connections: Flow[];
  /** Per output interface and per gateway, over the connections whose route is known. */
  interfaces: RouteRollup[];
  gateways: RouteRollup[];
  totals: Totals;
}

/**
 * Listeners carry no bytes, and a socket in CLOSE that never closed is only
 * bound: neither is traffic. A flow that did close stays for its grace period.
 */
export function carriesTraffic(f: Flow): boolean {
  // an unconnected UDP socket is bound like a listener, but it is where UDP traffic goes
  if (f.proto === 'udp') return f.closed !== null || f.tx_bytes + f.rx_bytes > 0;
  return f.state !== 'LISTEN' && !(f.state === 'CLOSE' && f.closed === null);
}

interface Sortable {
  tx_rate: number;
  rx_rate: number;
  tx_bytes: number;
  rx_bytes: number;
}

const byRate = (a: Sortable, b: Sortable): number => b.tx_rate + b.rx_rate - (a.tx_rate + a.rx_rate);
const byBytes = (a: Sortable, b: Sortable): number => b.tx_bytes + b.rx_bytes - (a.tx_bytes + a.rx_bytes);
const text = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Throughput first, so what moves bytes now is on top; the name breaks ties so rows do not jump between frames.
 * Names are made once per row, not per comparison: at churn most rows tie, and a sort compares each many times.
 */
function order<T extends Sortable>(rows: T[], sort: SortKey, name: (r: T) => string, keep = Infinity): T[] {
  type Named = { r: T; n: string };
  const cmp =
    sort === 'rate'
      ? (a: Named, b: Named) => byRate(a.r, b.r) || byBytes(a.r, b.r) || text(a.n, b.n)
      : sort === 'bytes'
        ? (a: Named, b: Named) => byBytes(a.r, b.r) || byRate(a.r, b.r) || text(a.n, b.n)
        : (a: Named, b: Named) => text(a.n, b.n) || byRate(a.r, b.r) || byBytes(a.r, b.r);
  return rows
    .map((r) => ({ r, n: name(r) }))
    .sort(cmp)
    .slice(0, keep)
    .map((x) => x.r);
}

const processName = (r: { comm: string | null; pid: number | null }): string =>
  r.pid === null ? '\uffff' : `${r.comm ?? ''}\u0000${String(r.pid).padStart(10, '0')}`;

/** Hosts compare by their numeric form, so 10.0.0.9 comes before 10.0.0.10. */
function hostName(addr: string | null): string {
  if (addr === null) return '';
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (v4) return '4' + v4.slice(1).map((n) => n.padStart(3, '0')).join('.');
  return '6' + addr;
}

const connectionName = (f: Flow): string => `${processName(f)}\u0000${hostName(f.daddr)}\u0000${String(f.dport).padStart(5, '0')}\u0000${String(f.sport).padStart(5, '0')}`;

/** `rows`: how many connections to keep, the first in the sort's order (all by default). */
export function buildModel(flows: Flow[], match: (f: Flow) => boolean, sort: SortKey, rows = Infinity, grouping: Grouping = 'process'): TopModel {
  const shown = flows.filter((f) => carriesTraffic(f) && match(f));
  const totals: Totals = { up: 0, down: 0, flows: shown.length };
  for (const f of shown) {
    totals.up += f.tx_rate;
    totals.down += f.rx_rate;
  }
  return {
    grouping,
    processes: order(rollup(shown, 'process'), sort, processName),
    containers: order(rollup(shown, 'container'), sort, (r) => r.key),
    hosts: order(rollup(shown, 'host'), sort, (r) => hostName(r.host)),
    connections: order(shown, sort, connectionName, rows),
    ...routeRollups(shown),
    totals,
  };
}
