/**
 * `nettrace route ADDR` (what `ip route get ADDR` says, and which flows now take that route) and
 * `nettrace routes` (the routing table as `ip route` / `route -n` show it, with flows and bytes per route),
 * both in nettrace's own network namespace (run them under `ip netns exec NS` for another).
 */
import net from 'node:net';
import { routedFlows } from '../../flows/flow-monitor';
import { prefixText, protocolName, routeKey, scopeName, tableName, typeName } from '../../flows/route-names';
import { RouteResolver } from '../../flows/routes';
import { Flow } from '../../flows/flow';
import { NativeRoute } from '../../native';
import { Tracer } from '../../tracer';
import { oneShot } from '../lifecycle';
import { CommonOptions, parseCommand, UsageError } from '../options';
import { renderFlows } from '../render-flows';
import { bytes, table } from '../text-table';

export const ROUTE_USAGE = `Usage: nettrace route ADDR [options] [FILTER]

The route the kernel takes to ADDR, as ip route get ADDR says it (interface,
gateway, the source address it picks, the routing table that decided), the
routing entry that matched, and the current flows that take that entry.

Options:
  --json              one JSON object: ip -j route get's keys plus route and flows
  -h, --help          show this help`;

export const ROUTES_USAGE = `Usage: nettrace routes [-a] [options] [FILTER]

The routing table, as ip route and route -n show it, with the current flows
and their bytes per route. FILTER and the options select the flows counted.

Options:
  -a, --all           every table (ip route show table all), not only main
  -4, -6              only IPv4 or only IPv6 routes and flows
  --json              one JSON object per route (ip -j route's keys plus flows, tx_bytes, rx_bytes)
  -h, --help          show this help`;

/** A route as `ip -j route` writes it (keys it leaves out are null here), with the traffic that takes it. */
export interface RouteRow {
  type: string;
  dst: string;
  gateway: string | null;
  dev: string | null;
  protocol: string;
  scope: string;
  prefsrc: string | null;
  metric: number | null;
  table: string;
  nexthops: { gateway: string | null; dev: string | null }[];
  flows: number;
  tx_bytes: number;
  rx_bytes: number;
}

/** The flows of this namespace now that the filters select, each with its route set. */
async function currentFlows(tracer: Tracer, o: CommonOptions): Promise<{ flows: Flow[]; routes: RouteResolver }> {
  const { flows, routes } = await routedFlows(tracer);
  const here = flows.filter((f) => f.netns === routes.netns && f.state !== 'LISTEN' && f.state !== 'CLOSE' && o.match(f));
  return { flows: here, routes };
}

export function checkAddress(addr: string | undefined): string {
  if (addr === undefined) throw new UsageError('route needs an address, as in: nettrace route 192.0.2.1');
  if (net.isIP(addr) === 0) throw new UsageError(`'${addr}' is not an IP address`);
  return addr;
}

export async function routeCommand(addr: string, o: CommonOptions, tracer: Tracer): Promise<void> {
  const { flows, routes } = await currentFlows(tracer, o);
  try {
    const a = await routes.get(addr);
    if (!a.route || !a.matched) throw new Error(`no route to ${addr}: ${a.error ?? 'the kernel gave none'}`);
    const entry = routeKey(a.matched);
    const taking = flows.filter((f) => routes.entryOf(f) === entry);
    const r = a.route;
    const matched = rowOf(a.matched, [], new Map(r.ifindex !== undefined && r.ifname ? [[r.ifindex, r.ifname]] : []));
    if (o.json) {
      const answer = { type: typeName(r.type), dst: r.dst, gateway: r.gateway ?? null, dev: r.ifname ?? null, prefsrc: r.prefsrc ?? null, table: tableName(r.table) };
      process.stdout.write(JSON.stringify({ ...answer, route: { ...matched, flows: taking.length }, flows: taking }) + '\n');
      return;
    }
    const words = [r.type === 1 ? '' : typeName(r.type), r.dst, r.gateway ? `via ${r.gateway}` : '', `dev ${r.ifname ?? r.ifindex}`];
    words.push(`table ${tableName(r.table)}`, r.prefsrc ? `src ${r.prefsrc}` : '');
    const lines = [words.filter(Boolean).join(' '), `    route ${ipLine(matched)}`, `${taking.length} flow${taking.length === 1 ? '' : 's'} take this route`];
    if (taking.length) lines.push(renderFlows(taking, false));
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    routes.close();
  }
}

export async function routesCommand(all: boolean, o: CommonOptions, tracer: Tracer): Promise<void> {
  const { flows, routes } = await currentFlows(tracer, o);
  try {
    const dump = await routes.dump();
    const names = new Map(dump.filter((r) => r.ifindex !== undefined && r.ifname).map((r) => [r.ifindex!, r.ifname!]));
    const shown = dump.filter((r) => (all || r.table === 254) && (o.families.length !== 1 || r.family === o.families[0]));
    const rows = shown.map((r) => {
      const key = routeKey(r);
      return rowOf(r, flows.filter((f) => routes.entryOf(f) === key), names);
    });
    if (o.json) process.stdout.write(rows.map((r) => JSON.stringify(r) + '\n').join(''));
    else process.stdout.write(renderRoutes(rows) + '\n');
  } finally {
    routes.close();
  }
}

function rowOf(r: NativeRoute, taking: Flow[], names: Map<number, string>): RouteRow {
  return {
    type: typeName(r.type),
    dst: prefixText(r),
    gateway: r.gateway ?? null,
    dev: r.ifname ?? (r.ifindex !== undefined ? (names.get(r.ifindex) ?? null) : null),
    protocol: protocolName(r.protocol),
    scope: scopeName(r.scope),
    prefsrc: r.prefsrc ?? null,
    metric: r.metric ?? null,
    table: tableName(r.table),
    nexthops: r.nexthops.map((h) => ({ gateway: h.gateway ?? null, dev: names.get(h.ifindex) ?? null })),
    flows: taking.length,
    tx_bytes: taking.reduce((n, f) => n + f.tx_bytes, 0),
    rx_bytes: taking.reduce((n, f) => n + f.rx_bytes, 0),
  };
}

/** One route in `ip route`'s words. */
function ipLine(r: RouteRow): string {
  const words = [r.type === 'unicast' ? '' : r.type, r.dst, r.gateway ? `via ${r.gateway}` : '', r.dev ? `dev ${r.dev}` : ''];
  words.push(`table ${r.table}`, `proto ${r.protocol}`, `scope ${r.scope}`, r.prefsrc ? `src ${r.prefsrc}` : '');
  words.push(r.metric !== null ? `metric ${r.metric}` : '');
  return words.filter(Boolean).join(' ');
}

function renderRoutes(rows: RouteRow[]): string {
  const header = ['Destination', 'Gateway', 'Iface', 'Src', 'Metric', 'Table', 'Proto', 'Scope', 'Type', 'Flows', 'TX', 'RX'];
  const via = (r: RouteRow): string =>
    r.gateway ?? (r.nexthops.length ? r.nexthops.map((h) => `${h.gateway ?? '*'}@${h.dev ?? '?'}`).join(',') : '-');
  const cells = rows.map((r) => [
    r.dst,
    via(r),
    r.dev ?? '-',
    r.prefsrc ?? '-',
    r.metric === null ? '-' : String(r.metric),
    r.table,
    r.protocol,
    r.scope,
    r.type,
    String(r.flows),
    bytes(r.tx_bytes),
    bytes(r.rx_bytes),
  ]);
  return table(header, cells);
}

/** `nettrace route ADDR [options] [FILTER]`. */
export function runRoute(argv: string[]): void {
  const addr = argv[0]?.startsWith('-') ? undefined : argv[0];
  const { common } = parseCommand(addr === undefined ? argv : argv.slice(1));
  if (common.help) return void process.stdout.write(ROUTE_USAGE + '\n');
  checkAddress(addr);
  oneShot(common, (tracer) => routeCommand(addr!, common, tracer));
}

/** `nettrace routes [-a] [options] [FILTER]`. */
export function runRoutes(argv: string[]): void {
  const { common, values } = parseCommand(argv, { all: { type: 'boolean', short: 'a' } });
  if (common.help) return void process.stdout.write(ROUTES_USAGE + '\n');
  oneShot(common, (tracer) => routesCommand((values.all as boolean) ?? false, common, tracer));
}
