/** The three views of `nettrace top` and their columns, shared by the screen and the plain-text report. */
import { Rollup, RouteRollup } from '../../../flows/rollup';
import { Flow } from '../../../flows/flow';
import { bytes, endpoint, ssState } from '../../text-table';
import { Column } from './columns';
import { TopModel } from './view-model';

export type Pane = 'processes' | 'hosts' | 'connections';
export const PANES: readonly Pane[] = ['processes', 'hosts', 'connections'];

export const PANE_TITLES: Record<Pane, string> = {
  processes: 'Processes',
  hosts: 'Remote hosts',
  connections: 'Connections',
};

export const rate = (n: number): string => `${bytes(n)}/s`;

/** A closed flow in its grace period says so, rather than showing ss's UNCONN. */
export function connectionState(f: Flow): string {
  if (f.closed !== null && f.state !== 'TIME_WAIT') return 'CLOSED';
  return ssState(f.state);
}

function owner(r: { pid: number | null; comm: string | null }): string {
  return r.pid === null ? '-' : (r.comm ?? '?');
}

function traffic<T extends { tx_rate: number; rx_rate: number; tx_bytes: number; rx_bytes: number }>(): Column<T>[] {
  return [
    { title: 'Up/s', min: 8, max: 9, priority: 9, align: 'right', cell: (r) => rate(r.tx_rate) },
    { title: 'Down/s', min: 8, max: 9, priority: 9, align: 'right', cell: (r) => rate(r.rx_rate) },
    { title: 'Sent', min: 6, max: 7, priority: 5, align: 'right', cell: (r) => bytes(r.tx_bytes) },
    { title: 'Recv', min: 6, max: 7, priority: 5, align: 'right', cell: (r) => bytes(r.rx_bytes) },
  ];
}

const conns: Column<Rollup> = { title: 'Conns', min: 5, max: 6, priority: 4, align: 'right', cell: (r) => String(r.flows) };

export const PROCESS_COLUMNS: Column<Rollup>[] = [
  { title: 'Process', min: 8, max: 24, priority: 10, align: 'left', cell: owner },
  { title: 'PID', min: 7, max: 7, priority: 3, align: 'right', cell: (r) => (r.pid === null ? '-' : String(r.pid)) },
  conns,
  ...traffic<Rollup>(),
];

export const CONTAINER_COLUMNS: Column<Rollup>[] = [
  { title: 'Container', min: 12, max: 40, priority: 10, align: 'left', cut: 'middle', cell: (r) => r.key },
  conns,
  ...traffic<Rollup>(),
];

/** The first pane's title: it shows processes, or containers and services once `c` groups by them. */
export function paneTitleOf(model: TopModel, pane: Pane): string {
  return pane === 'processes' && model.grouping === 'container' ? 'Containers' : PANE_TITLES[pane];
}

export const HOST_COLUMNS: Column<Rollup>[] = [
  { title: 'Remote host', min: 15, max: 39, priority: 10, align: 'left', cut: 'middle', cell: (r) => r.rname ?? r.host ?? '-' },
  conns,
  ...traffic<Rollup>(),
];

export const CONNECTION_COLUMNS: Column<Flow>[] = [
  { title: 'Process', min: 8, max: 16, priority: 8, align: 'left', cell: owner },
  { title: 'PID', min: 7, max: 7, priority: 2, align: 'right', cell: (f) => (f.pid === null ? '-' : String(f.pid)) },
  { title: 'Local', min: 12, max: 47, priority: 4, align: 'left', cut: 'middle', cell: (f) => endpoint(f.saddr, f.sport, f.family) },
  { title: 'Remote', min: 15, max: 47, priority: 10, align: 'left', cut: 'middle', cell: (f) => (f.rname ? `${f.rname}:${f.dport}` : endpoint(f.daddr, f.dport, f.family)) },
  { title: 'State', min: 6, max: 11, priority: 6, align: 'left', cell: connectionState },
  { title: 'Iface', min: 5, max: 15, priority: 3, align: 'left', cell: (f) => f.ifname ?? '-' },
  ...traffic<Flow>(),
  { title: 'RTT', min: 7, max: 8, priority: 3, align: 'right', cell: (f) => (f.srtt_us ? `${(f.srtt_us / 1000).toFixed(2)}ms` : '-') },
];

/** The per-route rollups (report only): by interface, and by gateway ("direct" when there is none). */
export const INTERFACE_COLUMNS: Column<RouteRollup>[] = [
  { title: 'Interface', min: 9, max: 15, priority: 10, align: 'left', cell: (r) => r.key },
  { title: 'Conns', min: 5, max: 6, priority: 4, align: 'right', cell: (r) => String(r.flows) },
  ...traffic<RouteRollup>(),
];

export const GATEWAY_COLUMNS: Column<RouteRollup>[] = [{ ...INTERFACE_COLUMNS[0], title: 'Gateway', max: 39 }, ...INTERFACE_COLUMNS.slice(1)];

/** A pane's rows and columns, with whether a row is a closed flow (shown dimmed). */
export interface PaneData<T> {
  rows: T[];
  columns: Column<T>[];
  closed: (row: T) => boolean;
}

export function paneData(model: TopModel, pane: Pane): PaneData<unknown> {
  switch (pane) {
    case 'processes':
      return model.grouping === 'container'
        ? ({ rows: model.containers, columns: CONTAINER_COLUMNS, closed: () => false } as PaneData<unknown>)
        : ({ rows: model.processes, columns: PROCESS_COLUMNS, closed: () => false } as PaneData<unknown>);
    case 'hosts':
      return { rows: model.hosts, columns: HOST_COLUMNS, closed: () => false } as PaneData<unknown>;
    case 'connections':
      return { rows: model.connections, columns: CONNECTION_COLUMNS, closed: (f) => (f as Flow).closed !== null } as PaneData<unknown>;
  }
}
