/**
 * What a filter looks at. Records, flow table rows and test fixtures all
 * present themselves through this interface; the address and comm questions
 * are methods so a record in a ring buffer can answer them from its bytes.
 */
import { inPrefix, parseIp } from './addr';
import { Prefix, Side } from './ast';

export interface FilterSubject {
  /** v4-mapped IPv6 sockets are 4, as nettrace reports them. */
  readonly family: 4 | 6;
  readonly proto: 'tcp' | 'udp';
  /** Kernel TCP state number (src/tcp.ts TCP_STATES). */
  readonly state: number;
  readonly sport: number;
  readonly dport: number;
  /** null while no owner is known: then pid, comm and cgroup terms are all false. */
  readonly pid: number | null;
  readonly cgroup: number | null;
  /** Whether the owner's comm is exactly `name` (latin1 bytes); false with no owner. */
  commEquals(name: Buffer): boolean;
  /** Whether the local (src) or remote (dst) address lies in `prefix`; false across families. */
  addrIn(side: Side, prefix: Prefix): boolean;
}

export interface SubjectFields {
  proto?: 'tcp' | 'udp';
  state: number;
  /** As nettrace prints them: 10.0.0.1, ::1, or ::ffff:10.0.0.1 (taken as IPv4). */
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  pid?: number | null;
  comm?: string | null;
  cgroup?: number | null;
}

function address(text: string): Prefix {
  const p = parseIp(text);
  if (!p) throw new Error(`not an IP address: '${text}'`);
  return p;
}

/** A subject from plain values, e.g. a typed event or a flow table row. Parses the addresses once. */
export function subjectOf(f: SubjectFields): FilterSubject {
  let src = address(f.saddr);
  let dst = address(f.daddr);
  // the kernel pairs an unspecified :: with a v4-mapped peer, and nettrace reports both as IPv4
  const unspecified6 = (p: Prefix): boolean => p.family === 6 && p.bytes.every((b) => b === 0);
  if (src.family === 6 && dst.family === 4 && unspecified6(src)) src = address('0.0.0.0');
  if (dst.family === 6 && src.family === 4 && unspecified6(dst)) dst = address('0.0.0.0');
  if (src.family !== dst.family) throw new Error(`addresses of different families: '${f.saddr}' and '${f.daddr}'`);
  const comm = f.comm == null ? null : Buffer.from(f.comm, 'latin1');
  return {
    family: src.family,
    proto: f.proto ?? 'tcp',
    state: f.state,
    sport: f.sport,
    dport: f.dport,
    pid: f.pid ?? null,
    cgroup: f.cgroup ?? null,
    commEquals: (name) => comm !== null && comm.equals(name),
    addrIn: (side, prefix) => {
      const own = side === 'src' ? src : dst;
      return own.family === prefix.family && inPrefix(own.bytes, 0, prefix);
    },
  };
}
