/**
 * `nettrace decode [--json] [FILE|-]`: a protobuf stream back as text or JSON lines. Each item is
 * printed as soon as its frame is whole, so at a bad byte everything before it is already out.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { StreamItem } from '../../proto/codec';
import { DecodeError, StreamDecoder } from '../../proto/stream';
import { eventLine, HEADER, printable } from '../render';
import { table } from '../text-table';
import { Rollup } from '../../flows/rollup';
import { fail } from '../lifecycle';
import { UsageError } from '../options';
import { renderFlows } from '../render-flows';

export const DECODE_USAGE = `Usage: nettrace decode [--json] [FILE|-]

Reads a stream written by --format protobuf (from FILE, or stdin when FILE
is - or absent) and prints it as text, or with --json one JSON object per
line (events as nettrace --json prints them; headers, snapshots and stats
with type header, snapshot and stats).

Exits 0 when the stream is whole, 2 at the first truncated or corrupt frame
(named by its byte offset, after printing everything before it).

Options:
  --json              one JSON object per line
  -h, --help          show this help`;

const iso = (ms: number): string => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms));

function rollupTable(title: string, rows: Rollup[]): string {
  const header = ['Key', 'Flows', 'TX', 'RX', 'TX/s', 'RX/s'];
  const cells = rows.map((r) => [printable(r.key), String(r.flows), String(r.tx_bytes), String(r.rx_bytes), r.tx_rate.toFixed(0), r.rx_rate.toFixed(0)]);
  return `${title}\n${table(header, cells)}`;
}

/** One item as text; `first` says whether the events' column header is still to be printed. */
export function itemText(item: StreamItem, state: { header: boolean }): string {
  switch (item.type) {
    case 'header':
      return `# nettrace stream v${item.version} from ${printable(item.producer)} on ${printable(item.hostname)}, ${printable(item.command)}, started ${iso(item.started)}`;
    case 'snapshot':
      return [
        `# snapshot ${iso(item.ts)}: ${item.flows.length} flows`,
        renderFlows(item.flows, true),
        rollupTable('per process', item.processes),
        rollupTable('per remote host', item.hosts),
      ].join('\n');
    case 'stats':
      return (
        `# stats ${iso(item.ts)}: ${item.records} records, ${item.drops} dropped by the kernel, ${item.missed} missed, ` +
        `${item.evictions} evicted, ${item.queueDrops} dropped in the queue, ${item.snapshotDrops} snapshots skipped, ${item.flowEvictions} flows evicted` +
        (item.outputDrops === undefined ? '' : `, ${item.outputDrops} not written`)
      );
    case 'steering':
      return (
        `# steering ${iso(item.ts)} sock ${item.sock} ${item.saddr}:${item.sport} > ${item.daddr}:${item.dport}: ` +
        `locality ${item.locality.toFixed(2)}, processed on CPU ${item.processed_cpus.join(',')}, read on CPU ${item.read_cpus.join(',')}`
      );
    default: {
      const line = eventLine(item);
      if (state.header) return line;
      state.header = true;
      return `${HEADER}\n${line}`;
    }
  }
}

/** Decodes `input` to `out`; resolves with the exit code and, on failure, the one-line reason. */
export async function decodeStream(input: Readable, out: (text: string) => void, json: boolean): Promise<{ code: number; message?: string }> {
  const decoder = new StreamDecoder();
  const state = { header: false };
  try {
    for await (const chunk of input) {
      const lines: string[] = [];
      try {
        decoder.push(chunk as Buffer, (item) => lines.push(json ? JSON.stringify(item) : itemText(item, state)));
      } finally {
        if (lines.length) out(lines.join('\n') + '\n');
      }
    }
    decoder.end();
  } catch (e) {
    if (e instanceof DecodeError) return { code: 2, message: e.message };
    const err = e as NodeJS.ErrnoException;
    return { code: 2, message: `cannot read the stream: ${err.code ?? err.message}` };
  }
  if (decoder.skipped) return { code: 0, message: `${decoder.skipped} frames of kinds this version does not know were skipped` };
  return { code: 0 };
}

/** The input: a file, or stdin for '-' or none. Throws one sentence when the file cannot be opened. */
export function openInput(file: string | undefined): Readable {
  if (file === undefined || file === '-') return process.stdin;
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
  return fs.createReadStream('', { fd });
}

/** `nettrace decode [--json] [FILE|-]`: exits 0 on a whole stream, 2 at the first bad frame. */
export function runDecode(argv: string[]): void {
  let values: { json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    throw new UsageError((e instanceof Error ? e.message : String(e)).split('\n')[0].split('. ')[0]);
  }
  if (values.help) return void process.stdout.write(DECODE_USAGE + '\n');
  if (positionals.length > 1) throw new UsageError(`decode reads one stream, not ${positionals.length}`);
  let input;
  try {
    input = openInput(positionals[0]);
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e), 2);
  }
  process.stdout.on('error', () => process.exit(0)); // the reader went away: nothing left to do
  void decodeStream(input, (text) => process.stdout.write(text), values.json ?? false).then(({ code, message }) => {
    if (message) process.stderr.write(`nettrace: decode: ${message}\n`);
    process.stdout.write('', () => process.exit(code));
  });
}
