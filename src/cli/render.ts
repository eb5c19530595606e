/** One aligned line per record, like tcpstates and tcplife but in one view. */
import { dnsSummary } from '../dns/text';
import { RecordCursor } from '../record-cursor';
import { Clock, NettraceEvent } from '../events';
import { Kind, UdpEvent } from '../layout';
import { connectResult, stateName } from '../tcp';

const COLUMNS: [string, number][] = [
  ['TIME', 12],
  ['PID', 7],
  ['COMM', 15],
  ['EVENT', 7],
  ['LOCAL', 21],
  ['REMOTE', 21],
  ['DETAIL', 22],
  ['DUR', 9],
];

export const HEADER = COLUMNS.map(([name, width]) => name.padEnd(width)).join(' ') + ' BYTES';

const KIND_NAMES: Record<number, string> = {
  [Kind.State]: 'state',
  [Kind.Connect]: 'connect',
  [Kind.Accept]: 'accept',
  [Kind.Close]: 'close',
  [Kind.Udp]: 'udp',
  [Kind.Dns]: 'dns',
};

export function kindName(kind: number): string {
  return KIND_NAMES[kind] ?? `kind${kind}`;
}

/** Names can hold anything a process chose: show control and non-ASCII bytes as \xNN. */
export function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function duration(ns: number): string {
  if (ns <= 0) return '-';
  if (ns < 1e6) return `${(ns / 1e3).toFixed(0)}us`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)}ms`;
  return `${(ns / 1e9).toFixed(ns < 1e10 ? 2 : 1)}s`;
}

function endpoint(addr: string, port: number, family: 4 | 6): string {
  return family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function time(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

interface LineFields {
  ms: number;
  pid: number | null;
  comm: string | null;
  kind: string;
  family: 4 | 6;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  detail: string;
  durNs: number;
  bytes: string;
}

function line(f: LineFields): string {
  const cells = [
    time(f.ms),
    f.pid === null ? '-' : String(f.pid),
    f.comm === null ? '-' : printable(f.comm),
    f.kind,
    endpoint(f.saddr, f.sport, f.family),
    endpoint(f.daddr, f.dport, f.family),
    f.detail,
    duration(f.durNs),
  ];
  return cells.map((cell, i) => cell.padEnd(COLUMNS[i][1])).join(' ') + (f.bytes ? ` ${f.bytes}` : '');
}

export function textLine(c: RecordCursor, clock: Clock): string {
  let detail: string;
  let dur: number;
  let bytes = '';
  switch (c.kind) {
    case Kind.State:
      detail = `${stateName(c.oldState)}>${stateName(c.newState)}`;
      dur = c.inOldNs;
      break;
    case Kind.Connect:
      detail = connectResult(c.err);
      dur = c.latencyNs;
      break;
    case Kind.Accept:
      detail = 'queued';
      dur = c.queuedNs;
      break;
    case Kind.Close:
      detail = `${stateName(c.oldState)}>CLOSE`;
      dur = c.lifetimeNs;
      bytes = `tx ${c.txBytes} rx ${c.rxBytes}`;
      break;
    case Kind.Udp:
      detail = c.udpEvent === UdpEvent.Open ? 'open' : 'close';
      dur = c.lifetimeNs;
      if (c.udpEvent !== UdpEvent.Open) {
        bytes = `tx ${c.txBytes} (${c.txDatagrams} dgrams) rx ${c.rxBytes} (${c.rxDatagrams} dgrams) drops ${c.drops}`;
      }
      break;
    default:
      detail = '';
      dur = 0;
  }
  const owned = c.hasOwner;
  const { family, saddr, sport, daddr, dport } = c;
  const who = { pid: owned ? c.pid : null, comm: owned ? c.comm : null };
  return line({ ms: clock.wallMs(c.tsNs), ...who, kind: kindName(c.kind), family, saddr, sport, daddr, dport, detail, durNs: dur, bytes });
}

/** The same line for an event object (e.g. one read back from a protobuf stream). */
export function eventLine(e: NettraceEvent): string {
  const [detail, us, bytes] =
    e.type === 'state'
      ? [`${e.old}>${e.new}`, e.old_us ?? 0, '']
      : e.type === 'connect'
        ? [e.result, e.latency_us, '']
        : e.type === 'accept'
          ? ['queued', e.queued_us, '']
          : e.type === 'udp'
            ? [
                e.event,
                e.duration_us ?? 0,
                e.event === 'open' ? '' : `tx ${e.tx_bytes} (${e.tx_datagrams} dgrams) rx ${e.rx_bytes} (${e.rx_datagrams} dgrams) drops ${e.drops}`,
              ]
            : e.type === 'dns'
              ? [dnsSummary(e), e.latency_us ?? 0, '']
              : [`${e.old}>CLOSE`, e.duration_us ?? 0, `tx ${e.tx_bytes} rx ${e.rx_bytes}`];
  return line({ ...e, ms: e.ts, kind: e.type, detail, durNs: us * 1000, bytes });
}
