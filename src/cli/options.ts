/** Options every command takes, parsed once; each command adds its own. */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { RecordCursor } from '../record-cursor';
import { FilterNode } from '../filter/ast';
import { compile } from '../filter/compile';
import { cursorFilter } from '../filter/cursor';
import { FilterSyntaxError } from '../filter/error';
import { kernelHints } from '../filter/hints';
import { parseFilter } from '../filter/parse';
import { subjectOf } from '../filter/subject';
import { escapeControls } from '../errors';
import { Kind } from '../layout';
import { KernelFilter } from '../native';
import { EVENT_KINDS, EventKind, HOOK_NAMES, HookName, TraceOptions } from '../trace-options';
import { TCP_STATES, TcpState } from '../tcp';
import { ownedCgroups } from './owned-cgroups';

/** Bad usage: its message is one line, whatever the user typed. */
export class UsageError extends Error {
  constructor(message: string) {
    super(escapeControls(message));
  }
}

/** What a filter needs of a flow or a socket. */
export interface Matchable {
  proto: 'tcp' | 'udp';
  family: 4 | 6;
  state: TcpState;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  pid: number | null;
  comm: string | null;
  cgroup: number | null;
}

export type Format = 'text' | 'json' | 'protobuf';

export interface CommonOptions {
  json: boolean;
  /** --format; --json is --format json. */
  format: Format;
  /** --output: a file, or unix:PATH for a Unix stream socket; undefined for stdout. */
  output?: string;
  pid?: number;
  comm?: string;
  port?: number;
  /** --container and --unit, as the cgroup ids they named when nettrace started. */
  cgroups?: Set<number>;
  families: (4 | 6)[];
  /** -t and -u: the protocols shown; both when neither or both were given, as ss. */
  protos: ('tcp' | 'udp')[];
  durationMs?: number;
  count?: number;
  /** --ring-kb in bytes. */
  ringBytes?: number;
  help: boolean;
  version: boolean;
  /** The filters, over a flow. */
  match: (f: Matchable) => boolean;
  /** The same filters over raw records, before any object is made; undefined when there are none. */
  recordFilter?: (c: RecordCursor) => boolean;
  /** What of them the kernel checks, so other sockets never reach the ring. */
  kernelFilter?: KernelFilter;
  /** Whether the kernel filter is the whole filter: only ports, families and protocols, no owner, no expression. */
  kernelExact: boolean;
  /** Hooks and kernel features to go without (--disable). */
  disable: HookName[];
  /** --netns: only sockets of this network namespace (a /run/netns name, a namespace file, or its inode). */
  netns?: string;
}

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON: Options = {
  json: { type: 'boolean' },
  format: { type: 'string', short: 'f' },
  output: { type: 'string', short: 'o' },
  pid: { type: 'string', short: 'p' },
  comm: { type: 'string' },
  port: { type: 'string' },
  container: { type: 'string' },
  unit: { type: 'string' },
  ipv4: { type: 'boolean', short: '4' },
  ipv6: { type: 'boolean', short: '6' },
  tcp: { type: 'boolean', short: 't' },
  udp: { type: 'boolean', short: 'u' },
  duration: { type: 'string', short: 'd' },
  count: { type: 'string', short: 'c' },
  'ring-kb': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  disable: { type: 'string', multiple: true },
  netns: { type: 'string' },
};

export const COMMON_HELP = `  --json              one JSON object per line
  -f, --format FMT    text, json or protobuf (length-delimited nettrace.v1.Frame, see proto/)
  -o, --output DEST   write to the file DEST, or to the Unix socket PATH with unix:PATH
  -p, --pid PID       only sockets owned by PID
      --comm NAME     only sockets owned by processes named NAME
      --port PORT     only sockets with PORT on either side
      --container ID  only sockets owned by processes in container ID (docker,
                      containerd, CRI-O, podman; a prefix of 4 or more digits)
      --unit NAME     only sockets owned by processes in systemd unit NAME
                      (NAME.service unless NAME ends in .service, .scope or .slice)
      --netns NS      only sockets of network namespace NS: a name under /run/netns,
                      a path such as /proc/PID/ns/net, or the namespace's inode
  -4, --ipv4          only IPv4 (including v4-mapped IPv6)
  -6, --ipv6          only IPv6
      --disable HOOK  go without HOOK, as on a kernel that lacks it: state, accept, snapshot,
                      udp, dns, or fexit (accepts then come from syscall tracepoints);
                      repeat it or give a comma list
      --ring-kb KB    ring buffer size, a power of two from 4 to 1048576 (default 16384);
                      what it cannot take is counted as dropped
  -t, --tcp           only TCP sockets
  -u, --udp           only UDP sockets
  -h, --help          show this help

FILTER is ss's filter grammar, e.g. state established '( dport = :443 or dport = :80 )',
dst 10.0.0.0/8, not src [::1], tcp, udp, plus pid N, comm NAME and cgroup ID.`;

/** A parseArgs failure as a usage error: its first sentence (the rest is a hint about '--'). */
export function argsError(e: unknown): UsageError {
  return new UsageError(e instanceof Error ? e.message.split('\n')[0].split('. ')[0].replace(/\.$/, '') : String(e));
}

export function integer(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const s = String(value);
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, not '${s}'`);
  }
  return Number(s);
}

export function seconds(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const s = String(value);
  if (!/^\d+(\.\d+)?$/.test(s) || !(Number(s) > 0)) throw new UsageError(`${name} must be a positive number of seconds, not '${s}'`);
  return Number(s) * 1000;
}

function ringKb(value: unknown): number | undefined {
  const kb = integer('--ring-kb', value, 4, 1 << 20);
  if (kb === undefined) return undefined;
  if ((kb & (kb - 1)) !== 0) throw new UsageError(`--ring-kb must be a power of two (4, 8, ... 1048576), not '${kb}'`);
  return kb * 1024;
}

export function parseCommand(argv: string[], extra: Options = {}): { common: CommonOptions; values: Record<string, unknown> } {
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: { ...COMMON, ...extra } }));
  } catch (e) {
    throw argsError(e);
  }
  const families: (4 | 6)[] = [];
  if (values.ipv4) families.push(4);
  if (values.ipv6) families.push(6);
  const comm = values.comm as string | undefined;
  if (comm !== undefined && (comm.length === 0 || Buffer.byteLength(comm, 'latin1') > 15)) {
    throw new UsageError(`--comm takes a process name of 1 to 15 characters, as the kernel keeps them`);
  }
  const pid = integer('--pid', values.pid, 1, 4194304);
  const port = integer('--port', values.port, 0, 65535);
  const cgroups = usage(() => ownedCgroups(values.container as string | undefined, values.unit as string | undefined));
  const family = families.length === 1 ? families[0] : undefined;
  const only = values.tcp && !values.udp ? 'tcp' : values.udp && !values.tcp ? 'udp' : undefined;
  const onlyUdp = only === 'udp';
  const commBytes = comm === undefined ? undefined : Buffer.from(comm, 'latin1');
  const ast = filterExpression(positionals.join(' '));
  const expr = ast && compile(ast);
  const onRecords = expr && cursorFilter(expr);
  const any = cgroups !== undefined || pid !== undefined || comm !== undefined || port !== undefined || family !== undefined || only !== undefined || expr !== undefined;
  const format = formatOf(values.format, (values.json as boolean) ?? false);
  const output = values.output as string | undefined;
  if (output !== undefined && (output === '' || output === 'unix:')) throw new UsageError('--output takes a file or unix:PATH');
  const common: CommonOptions = {
    json: format === 'json',
    format,
    output,
    pid,
    comm,
    port,
    cgroups,
    families,
    protos: only ? [only] : ['tcp', 'udp'],
    durationMs: seconds('--duration', values.duration),
    count: integer('--count', values.count, 1, Number.MAX_SAFE_INTEGER),
    ringBytes: ringKb(values['ring-kb']),
    help: (values.help as boolean) ?? false,
    version: (values.version as boolean) ?? false,
    match: (f) =>
      (pid === undefined || f.pid === pid) &&
      (comm === undefined || f.comm === comm) &&
      (port === undefined || f.sport === port || f.dport === port) &&
      (cgroups === undefined || (f.cgroup !== null && cgroups.has(f.cgroup))) &&
      (family === undefined || f.family === family) &&
      (only === undefined || f.proto === only) &&
      (expr === undefined || expr(subjectOf({ ...f, state: TCP_STATES.indexOf(f.state) }))),
    recordFilter: any
      ? (c) =>
          (pid === undefined || (c.hasOwner && c.pid === pid)) &&
          (commBytes === undefined || (c.hasOwner && c.commEquals(commBytes))) &&
          (port === undefined || c.sport === port || c.dport === port) &&
          (cgroups === undefined || (c.hasOwner && cgroups.has(c.cgroup))) &&
          (family === undefined || c.family === family) &&
          (only === undefined || (c.kind === Kind.Dns ? c.proto === only : (c.kind === Kind.Udp) === onlyUdp)) &&
          (onRecords === undefined || onRecords(c))
      : undefined,
    kernelFilter: kernelFilterOf(ast, { pid, port, family, cgroups }),
    // counted in the kernel without owners: no owner condition may apply
    kernelExact: expr === undefined && pid === undefined && comm === undefined && cgroups === undefined,
    disable: hookNames(values.disable as string[] | undefined),
    netns: values.netns === undefined ? undefined : String(values.netns),
  };
  return { common, values };
}

function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

function formatOf(value: unknown, json: boolean): Format {
  if (value === undefined) return json ? 'json' : 'text';
  if (value !== 'text' && value !== 'json' && value !== 'protobuf') {
    throw new UsageError(`--format takes text, json or protobuf, not '${String(value)}'`);
  }
  if (json && value !== 'json') throw new UsageError(`--json and --format ${value} contradict each other`);
  return value;
}

function hookNames(values: string[] | undefined): HookName[] {
  const names = (values ?? []).flatMap((v) => v.split(','));
  for (const n of names) {
    if (!(HOOK_NAMES as readonly string[]).includes(n)) throw new UsageError(`--disable takes ${HOOK_NAMES.join(', ')}, not '${n}'`);
  }
  return names as HookName[];
}

/** For the commands that print only to stdout, and `states` only as text or JSON. */
export function stdoutOnly(command: string, o: CommonOptions): void {
  if (o.format === 'protobuf' && command === 'states') {
    throw new UsageError('nettrace states prints text or JSON; --format protobuf is for the stream, flows and top');
  }
  if (o.output !== undefined) throw new UsageError(`nettrace ${command} prints to stdout; --output is for the stream and nettrace flows`);
}

/** What every command hands the tracer. */
export function traceOptions(o: CommonOptions): TraceOptions {
  return { filter: o.recordFilter, kernelFilter: o.kernelFilter, disable: o.disable, ringBytes: o.ringBytes, netns: o.netns };
}

/**
 * What the commands that keep a flow table ask for: the records that open and
 * close flows. States in between come from the snapshot at each refresh, so no
 * record per transition is made for them.
 */
export function flowTraceOptions(o: CommonOptions): TraceOptions {
  return { ...traceOptions(o), events: ['connect', 'accept', 'close', 'udp'] };
}

/** --events: a comma list of record kinds (repeatable); undefined for all of them. */
export function eventKinds(values: string[] | undefined): EventKind[] | undefined {
  if (values === undefined) return undefined;
  const names = values.flatMap((v) => v.split(','));
  for (const n of names) {
    if (!(EVENT_KINDS as readonly string[]).includes(n)) throw new UsageError(`--events takes a comma list of ${EVENT_KINDS.join(', ')}, not '${n}'`);
  }
  return [...new Set(names)] as EventKind[];
}

/**
 * The flags' conditions and what the expression necessarily implies, in the
 * form the kernel takes. The kernel holds one set of "either side" ports, so
 * sport and dport hints join it (weaker, still never losing a match).
 */
function kernelFilterOf(ast: FilterNode | undefined, flags: { pid?: number; port?: number; family?: 4 | 6; cgroups?: Set<number> }): KernelFilter | undefined {
  const h = ast ? kernelHints(ast) : null;
  const small = (v: number[] | undefined) => (v !== undefined && v.length <= 1024 ? v : undefined);
  const hintedPorts = h && (h.ports || h.sports || h.dports) ? [...new Set([...(h.ports ?? []), ...(h.sports ?? []), ...(h.dports ?? [])])] : undefined;
  const kf: KernelFilter = {
    family: flags.family ?? (h?.families?.length === 1 ? h.families[0] : undefined),
    pids: flags.pid !== undefined ? [flags.pid] : small(h?.pids),
    ports: flags.port !== undefined ? [flags.port] : small(hintedPorts),
    cgroups: flags.cgroups !== undefined ? [...flags.cgroups] : small(h?.cgroups),
  };
  return kf.family === undefined && kf.pids === undefined && kf.ports === undefined && kf.cgroups === undefined ? undefined : kf;
}

/** The positional words as one ss filter; a syntax error is a usage error naming the column. */
function filterExpression(text: string): FilterNode | undefined {
  if (text.trim() === '') return undefined;
  try {
    return parseFilter(text);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new UsageError(e.message.replace(/^filter: /, 'filter: '));
    throw e;
  }
}
