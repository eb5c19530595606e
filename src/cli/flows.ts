/** `nettrace flows`: every TCP and UDP socket now, as `ss -tuanp` shows them, with bytes and RTT. */
import { flowSnapshot } from '../flows/rollup';
import { encodeItems } from '../proto/stream';
import { Output } from './output';
import { statsRecord, streamHeader } from './protobuf';
import { routedFlows } from '../flows/flow-monitor';
import { Flow } from '../flows/flow';
import { Tracer } from '../tracer';
import { printable } from './render';
import { bytes, endpoint, ssState, table } from './table';
import { CommonOptions } from './options';

export interface FlowsOptions extends CommonOptions {
  listening: boolean;
  all: boolean;
}

/** As ss -l takes it: TCP listeners, and UDP sockets that are bound but not connected (UNCONN). */
function listening(f: Flow): boolean {
  return f.state === 'LISTEN' || (f.proto === 'udp' && f.state === 'CLOSE' && f.closed === null);
}

export function selectFlows(flows: Flow[], o: FlowsOptions): Flow[] {
  return flows
    .filter((f) => (o.all ? true : o.listening ? listening(f) : !listening(f) && f.state !== 'CLOSE'))
    .filter((f) => o.match(f))
    .sort((a, b) => a.sport - b.sport || a.dport - b.dport);
}

/** Under an unconnected UDP socket, one line per remote endpoint it exchanged the most with. */
function peerLines(f: Flow, netid: boolean): string[][] {
  return (f.peers ?? []).map((p) => [
    ...(netid ? [''] : []),
    '',
    '',
    '',
    '',
    `> ${endpoint(p.daddr, p.dport, p.family)}`,
    '',
    bytes(p.tx_bytes),
    bytes(p.rx_bytes),
    '',
    '',
  ]);
}

/** A cgroup other than the root: then the flows show a Container column. */
const contained = (f: Flow): boolean => f.container !== null && f.container.path !== '/';

/** With `netid`, a first column names the protocol, as ss does when it shows both. */
export function renderFlows(flows: Flow[], listening: boolean, netid = false): string {
  const cgroups = flows.some(contained);
  const translated = flows.some((f) => f.nat !== null);
  const header = [
    ...(netid ? ['Netid'] : []),
    'State', 'Recv-Q', 'Send-Q', 'Local Address:Port', 'Peer Address:Port', 'Iface', 'TX', 'RX', 'RTT', 'Process',
    ...(cgroups ? ['Container'] : []),
    ...(translated ? ['NAT (as the peer sees it)'] : []),
  ];
  const rows = flows.flatMap((f) => [[
    ...(netid ? [f.proto] : []),
    ssState(f.state),
    String(f.rx_queue),
    String(f.tx_queue),
    endpoint(f.saddr, f.sport, f.family),
    (listening && f.state === 'LISTEN') || f.dport === 0 ? endpoint(f.daddr, 0, f.family) : endpoint(f.daddr, f.dport, f.family),
    f.ifname ?? '-',
    bytes(f.tx_bytes),
    bytes(f.rx_bytes),
    f.srtt_us ? `${(f.srtt_us / 1000).toFixed(2)}ms` : '-',
    f.pid === null ? '-' : `${printable(f.comm ?? '')},pid=${f.pid}`,
    ...(cgroups ? [f.container === null ? '-' : printable(f.container.name)] : []),
    ...(translated ? [f.nat === null ? '-' : `${f.nat.kind} ${endpoint(f.nat.saddr, f.nat.sport, f.family)} > ${endpoint(f.nat.daddr, f.nat.dport, f.family)}`] : []),
  ], ...peerLines(f, netid)]);
  // a peer's line leaves the columns after Process empty
  return table(header, rows.map((r) => [...r, ...new Array<string>(header.length - r.length).fill('')]));
}

export async function flowsCommand(o: FlowsOptions, tracer: Tracer, out: Output): Promise<void> {
  const now = Date.now();
  const routed = await routedFlows(tracer);
  routed.routes.close();
  const nat = routed.nat;
  if (nat.stats.failed > 0) {
    const why = [...nat.failures].map(([reason, n]) => `${reason} (${n})`).join('; ');
    process.stderr.write(`nettrace: ${nat.stats.failed} conntrack look-ups failed, those flows show no translation: ${why}\n`);
  }
  const flows = selectFlows(routed.flows, o);
  await tracer.stop();
  if (o.format === 'protobuf') out.write(encodeItems([streamHeader('flows'), flowSnapshot(flows, now), statsRecord(tracer)]));
  else if (o.json) out.write(flows.map((f) => JSON.stringify(f)).join('\n') + (flows.length ? '\n' : ''));
  else out.write(renderFlows(flows, o.listening, o.protos.length > 1) + '\n');
  await out.close();
}
