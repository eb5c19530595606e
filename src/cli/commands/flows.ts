/** `nettrace flows`: every TCP and UDP socket now, as `ss -tuanp` shows them, with bytes and RTT. */
import { routedFlows } from '../../flows/flow-monitor';
import { flowSnapshot } from '../../flows/rollup';
import { Flow } from '../../flows/flow';
import { encodeItems } from '../../proto/stream';
import { Tracer } from '../../tracer';
import { fail, start, stopRequested } from '../lifecycle';
import { COMMON_HELP, CommonOptions, parseCommand, traceOptions } from '../options';
import { openOutput, Output } from '../output';
import { statsRecord, streamHeader } from '../protobuf';
import { renderFlows } from '../render-flows';

const FLOWS_USAGE = `Usage: nettrace flows [-l|-a] [-t|-u] [options] [FILTER]

Every TCP and UDP socket now, as ss -tuanp shows them, with data bytes and RTT
(UDP: datagrams, the kernel's drops, and per remote endpoint bytes of
unconnected sockets in --json, the top ones under each socket in the table).
Sockets that predate nettrace are included, their owners found in /proc.

Options:
  -l, --listening     only listening sockets (Recv-Q: pending accepts, Send-Q: backlog)
                      and unconnected UDP sockets (UNCONN), as ss -l
  -a, --all           listening and connected sockets
${COMMON_HELP}`;

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

/** `nettrace flows [-l|-a] [options] [FILTER]`: one snapshot, printed, then exit. */
export function runFlows(argv: string[]): void {
  const { common, values } = parseCommand(argv, {
    listening: { type: 'boolean', short: 'l' },
    all: { type: 'boolean', short: 'a' },
  });
  if (common.help) return void process.stdout.write(FLOWS_USAGE + '\n');
  const o: FlowsOptions = { ...common, listening: (values.listening as boolean) ?? false, all: (values.all as boolean) ?? false };
  const stop = stopRequested(common);
  const output = openOutput(common.output);
  const tracer = start({ ...traceOptions(common), events: [] }); // one snapshot: no records needed
  void stop.then(() => tracer.stop().then(() => process.exit(0)));
  output.then((out) => flowsCommand(o, tracer, out)).then(
    () => process.exit(0),
    (e) => fail(e instanceof Error ? e.message : String(e), 1),
  );
}
