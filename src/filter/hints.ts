/**
 * What the kernel side could check before it makes a record: conditions that
 * every match of the whole filter satisfies. They are necessary, never
 * sufficient: a record that passes them still goes through the full filter in
 * user space, so a weaker hint costs only speed, while a wrong one would lose
 * records. Hence every rule here only ever widens when unsure.
 */
import { FilterNode, PortOp } from './ast';

export interface KernelHints {
  /** Each field present must hold. Lists are sorted; an empty list means nothing can match. */
  families?: (4 | 6)[];
  /** The owner's pid is one of these (so the owner is known). */
  pids?: number[];
  cgroups?: number[];
  sports?: number[];
  dports?: number[];
  /** sport or dport is one of these, as --port takes it. */
  ports?: number[];
}

/** null: any value. */
type Values = ReadonlySet<number> | null;

interface Need {
  readonly family: Values;
  readonly pid: Values;
  readonly cgroup: Values;
  readonly sport: Values;
  readonly dport: Values;
  readonly port: Values;
}

const ANY: Need = { family: null, pid: null, cgroup: null, sport: null, dport: null, port: null };
const EMPTY = new Set<number>();
const NOTHING: Need = { family: EMPTY, pid: EMPTY, cgroup: EMPTY, sport: EMPTY, dport: EMPTY, port: EMPTY };

const NEGATED: Record<PortOp, PortOp> = { eq: 'ne', ne: 'eq', lt: 'ge', ge: 'lt', le: 'gt', gt: 'le' };

function intersect(a: Values, b: Values): Values {
  if (a === null) return b;
  if (b === null) return a;
  return new Set([...a].filter((v) => b.has(v)));
}

function union(a: Values, b: Values): Values {
  return a === null || b === null ? null : new Set([...a, ...b]);
}

/** Both hold. One value can only be in both sets; but "either port" may be met by each side differently, so keep one. */
function both(a: Need, b: Need): Need {
  const port = a.port === null ? b.port : b.port === null || a.port.size <= b.port.size ? a.port : b.port;
  return {
    family: intersect(a.family, b.family),
    pid: intersect(a.pid, b.pid),
    cgroup: intersect(a.cgroup, b.cgroup),
    sport: intersect(a.sport, b.sport),
    dport: intersect(a.dport, b.dport),
    port,
  };
}

function either(a: Need, b: Need): Need {
  return {
    family: union(a.family, b.family),
    pid: union(a.pid, b.pid),
    cgroup: union(a.cgroup, b.cgroup),
    sport: union(a.sport, b.sport),
    dport: union(a.dport, b.dport),
    port: union(a.port, b.port),
  };
}

/** What must hold when `node` is true (positive) or false; negations are pushed down by De Morgan. */
function need(node: FilterNode, positive: boolean): Need {
  switch (node.type) {
    case 'true':
      return positive ? ANY : NOTHING;
    case 'and':
      return (positive ? both : either)(need(node.left, positive), need(node.right, positive));
    case 'or':
      return (positive ? either : both)(need(node.left, positive), need(node.right, positive));
    case 'not':
      return need(node.operand, !positive);
    case 'port': {
      if ((positive ? node.op : NEGATED[node.op]) !== 'eq') return ANY;
      const one = new Set([node.port]);
      return node.side === 'src' ? { ...ANY, sport: one, port: one } : { ...ANY, dport: one, port: one };
    }
    case 'addr': {
      const { family, bits } = node.prefix;
      if (positive) return { ...ANY, family: new Set([family]) };
      // outside a /0 is exactly the other family
      return bits === 0 ? { ...ANY, family: new Set([family === 4 ? 6 : 4]) } : ANY;
    }
    case 'pid':
      return positive ? { ...ANY, pid: new Set([node.pid]) } : ANY;
    case 'cgroup':
      return positive ? { ...ANY, cgroup: new Set([node.cgroup]) } : ANY;
    default:
      return ANY;
  }
}

const sorted = (v: ReadonlySet<number>): number[] => [...v].sort((a, b) => a - b);
const within = (a: ReadonlySet<number>, b: ReadonlySet<number>): boolean => [...a].every((v) => b.has(v));

/** Necessary conditions of the whole filter the kernel could apply, or null when there are none. */
export function kernelHints(node: FilterNode): KernelHints | null {
  const n = need(node, true);
  const hints: KernelHints = {};
  if (n.family && n.family.size < 2) hints.families = sorted(n.family) as (4 | 6)[];
  if (n.pid) hints.pids = sorted(n.pid);
  if (n.cgroup) hints.cgroups = sorted(n.cgroup);
  if (n.sport) hints.sports = sorted(n.sport);
  if (n.dport) hints.dports = sorted(n.dport);
  // "either port" adds nothing when one side's list already implies it
  if (n.port && !(n.sport && within(n.sport, n.port)) && !(n.dport && within(n.dport, n.port))) hints.ports = sorted(n.port);
  return Object.keys(hints).length > 0 ? hints : null;
}
