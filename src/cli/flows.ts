/** `nettrace flows`: every TCP socket now, as `ss -tanp` shows them, with bytes and RTT. */
import { flowSnapshot } from '../flows/rollup';
import { encodeItems } from '../proto/stream';
import { Output } from './output';
import { statsRecord, streamHeader } from './protobuf';
import { routedFlows } from '../flows/monitor';
import { Flow } from '../flows/table';
import { Tracer } from '../tracer';
import { printable } from './render';
import { bytes, endpoint, ssState, table } from './table';
import { CommonOptions } from './options';

export interface FlowsOptions extends CommonOptions {
  listening: boolean;
  all: boolean;
}

export function selectFlows(flows: Flow[], o: FlowsOptions): Flow[] {
  return flows
    .filter((f) => (o.all ? true : o.listening ? f.state === 'LISTEN' : f.state !== 'LISTEN' && f.state !== 'CLOSE'))
    .filter((f) => o.match(f))
    .sort((a, b) => a.sport - b.sport || a.dport - b.dport);
}

export function renderFlows(flows: Flow[], listening: boolean): string {
  const header = ['State', 'Recv-Q', 'Send-Q', 'Local Address:Port', 'Peer Address:Port', 'Iface', 'TX', 'RX', 'RTT', 'Process'];
  const rows = flows.map((f) => [
    ssState(f.state),
    String(f.rx_queue),
    String(f.tx_queue),
    endpoint(f.saddr, f.sport, f.family),
    listening && f.state === 'LISTEN' ? endpoint(f.daddr, 0, f.family) : endpoint(f.daddr, f.dport, f.family),
    f.ifname ?? '-',
    bytes(f.tx_bytes),
    bytes(f.rx_bytes),
    f.srtt_us ? `${(f.srtt_us / 1000).toFixed(2)}ms` : '-',
    f.pid === null ? '-' : `${printable(f.comm ?? '')},pid=${f.pid}`,
  ]);
  return table(header, rows);
}

export async function flowsCommand(o: FlowsOptions, tracer: Tracer, out: Output): Promise<void> {
  const now = Date.now();
  const routed = await routedFlows(tracer);
  routed.routes.close();
  const flows = selectFlows(routed.flows, o);
  await tracer.stop();
  if (o.format === 'protobuf') out.write(encodeItems([streamHeader('flows'), flowSnapshot(flows, now), statsRecord(tracer)]));
  else if (o.json) out.write(flows.map((f) => JSON.stringify(f)).join('\n') + (flows.length ? '\n' : ''));
  else out.write(renderFlows(flows, o.listening) + '\n');
  await out.close();
}
