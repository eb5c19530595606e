/** Command-line options of `nettrace`, validated into one typed object. */
import { parseArgs } from 'node:util';

export class UsageError extends Error {}

export interface CliOptions {
  json: boolean;
  pid?: number;
  comm?: string;
  port?: number;
  families: (4 | 6)[];
  durationMs?: number;
  count?: number;
  help: boolean;
  version: boolean;
}

export const USAGE = `Usage: nettrace [options]

Streams every TCP connect, accept, state change and close on this machine,
one line each, attributed to the process that owns the socket.

Options:
  --json              one JSON object per line
  -p, --pid PID       only sockets owned by PID
      --comm NAME     only sockets owned by processes named NAME
      --port PORT     only sockets with PORT on either side
  -4, --ipv4          only IPv4 (including v4-mapped IPv6)
  -6, --ipv6          only IPv6
  -d, --duration SEC  stop after SEC seconds
  -c, --count N       stop after N events
  -h, --help          show this help
  -V, --version       show the version

Stop with Ctrl-C: a summary of events and drops goes to stderr.`;

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, not '${value}'`);
  }
  return Number(value);
}

export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        json: { type: 'boolean' },
        pid: { type: 'string', short: 'p' },
        comm: { type: 'string' },
        port: { type: 'string' },
        ipv4: { type: 'boolean', short: '4' },
        ipv6: { type: 'boolean', short: '6' },
        duration: { type: 'string', short: 'd' },
        count: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (e) {
    // parseArgs explains itself in its first sentence; the rest is a hint about '--'
    const msg = e instanceof Error ? e.message.split('\n')[0].split('. ')[0].replace(/\.$/, '') : String(e);
    throw new UsageError(msg);
  }
  const v = parsed.values;
  const families: (4 | 6)[] = [];
  if (v.ipv4) families.push(4);
  if (v.ipv6) families.push(6);
  let durationMs: number | undefined;
  if (v.duration !== undefined) {
    const s = Number(v.duration);
    if (!/^\d+(\.\d+)?$/.test(v.duration) || !(s > 0)) {
      throw new UsageError(`--duration must be a positive number of seconds, not '${v.duration}'`);
    }
    durationMs = s * 1000;
  }
  if (v.comm !== undefined && (v.comm.length === 0 || Buffer.byteLength(v.comm, 'latin1') > 15)) {
    throw new UsageError(`--comm takes a process name of 1 to 15 characters, as the kernel keeps them`);
  }
  return {
    json: v.json ?? false,
    pid: integer('--pid', v.pid, 1, 4194304),
    comm: v.comm,
    port: integer('--port', v.port, 0, 65535),
    families,
    durationMs,
    count: integer('--count', v.count, 1, Number.MAX_SAFE_INTEGER),
    help: v.help ?? false,
    version: v.version ?? false,
  };
}
