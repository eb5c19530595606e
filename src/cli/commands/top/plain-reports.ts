/** `nettrace top` when stdout is not a terminal: one plain snapshot per interval, no escape sequences. */
import { FlowMonitor } from '../../../flows/flow-monitor';
import { CgroupResolver } from '../../../flows/cgroups';
import { NatResolver, NatStats } from '../../../flows/nat';
import { flowSnapshot } from '../../../flows/rollup';
import { RouteResolver } from '../../../flows/routes';
import { encodeItems } from '../../../proto/stream';
import { statsRecord, streamHeader } from '../../protobuf';
import { printable } from '../../render';
import { table } from '../../text-table';
import { Column } from './columns';
import { buildModel, TopModel } from './view-model';
import { CONNECTION_COLUMNS, CONTAINER_COLUMNS, GATEWAY_COLUMNS, HOST_COLUMNS, INTERFACE_COLUMNS, PANE_TITLES, PROCESS_COLUMNS, rate } from './panes';
import { TopOptions } from '../../view-options';
import { messageOf, TopIo, TopSession, TopSource } from './session';

export interface TopReport {
  ts: number;
  processes: TopModel['processes'];
  containers: TopModel['containers'];
  hosts: TopModel['hosts'];
  connections: TopModel['connections'];
  interfaces: TopModel['interfaces'];
  gateways: TopModel['gateways'];
  /** The conntrack look-ups so far (see NatStats), why some failed, and why none are made when conntrack is absent. */
  nat: (NatStats & { failures: Record<string, number>; unavailable: string | null }) | null;
}

export function reportJson(ts: number, model: TopModel, nat?: NatResolver): TopReport {
  const { processes, containers, hosts, connections, interfaces, gateways } = model;
  const natStats = nat ? { ...nat.stats, failures: Object.fromEntries(nat.failures), unavailable: nat.unavailable ?? null } : null;
  return { ts, processes, containers, hosts, connections, interfaces, gateways, nat: natStats };
}

function section<T>(title: string, columns: Column<T>[], rows: T[]): string {
  return `${title}\n${table(
    columns.map((c) => c.title),
    rows.map((r) => columns.map((c) => printable(c.cell(r)))),
  )}`;
}

export function reportText(ts: number, model: TopModel, stats: { drops: number; missed: number }): string {
  const t = model.totals;
  const shown = model.connections.length < t.flows ? ` (the ${model.connections.length} busiest of ${t.flows})` : '';
  return [
    `${new Date(ts).toISOString()}  up ${rate(t.up)}  down ${rate(t.down)}  ${t.flows} flows  drops ${stats.drops}  missed ${stats.missed}`,
    section(PANE_TITLES.processes, PROCESS_COLUMNS, model.processes),
    section('Containers', CONTAINER_COLUMNS, model.containers),
    section(PANE_TITLES.hosts, HOST_COLUMNS, model.hosts),
    section(PANE_TITLES.connections + shown, CONNECTION_COLUMNS, model.connections),
    section('Interfaces', INTERFACE_COLUMNS, model.interfaces),
    section('Gateways', GATEWAY_COLUMNS, model.gateways),
  ].join('\n\n');
}

export function runReports(o: TopOptions, tracer: TopSource, done: (code: number) => void, io: TopIo): TopSession {
  const routes = new RouteResolver();
  const nat = new NatResolver();
  const monitor = new FlowMonitor(tracer, {}, routes, { containers: new CgroupResolver(), nat });
  // the first refresh only sets the baseline, so every report has rates over a whole interval
  monitor.refresh();
  const protobuf = o.format === 'protobuf';
  if (protobuf) io.output.write(encodeItems([streamHeader('top')]));
  let reports = 0;
  let ended = false;
  const session: TopSession = {
    quit(code, message) {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      monitor.close();
      routes.close();
      nat.close();
      if (protobuf) io.output.write(encodeItems([statsRecord(tracer)]));
      if (message) io.errors.write(`nettrace: ${message}\n`);
      done(code);
    },
  };
  const timer = setInterval(() => {
    try {
      const now = Date.now();
      monitor.refresh(now);
      // each report carries the routes and translations of its own flows (looked up off this thread)
      void Promise.all([monitor.routesSettled(), monitor.natSettled()]).then(() => {
        if (ended) return;
        if (protobuf) io.output.write(encodeItems([flowSnapshot(monitor.table.flows().filter(o.match), now)]));
        else {
          const model = buildModel(monitor.table.flows(), o.match, 'rate', o.rows);
          io.output.write(o.json ? JSON.stringify(reportJson(now, model, nat)) + '\n' : reportText(now, model, tracer.stats()) + '\n\n');
        }
        if (o.count !== undefined && ++reports >= o.count) session.quit(0);
      });
    } catch (e) {
      session.quit(1, messageOf(e));
    }
  }, o.intervalMs);
  return session;
}
