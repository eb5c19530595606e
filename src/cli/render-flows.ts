/** Flows as an `ss -tuanp` table, for `nettrace flows`, the flows of a route, and decoded snapshots. */
import { Flow } from '../flows/flow';
import { printable } from './render';
import { bytes, endpoint, ssState, table } from './text-table';

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
