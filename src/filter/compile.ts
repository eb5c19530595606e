/**
 * Turns a filter into a predicate of closures, so a match costs no parsing,
 * no lookups and no allocation: values are prepared once here.
 */
import { FilterNode, PortNode } from './ast';
import { stateMatches } from './state-masks';
import { FilterSubject } from './subject';

export type FilterPredicate = (s: FilterSubject) => boolean;

/** Every comparison as an inclusive range of ports, or its complement for != . */
function portRange(n: PortNode): [number, number] {
  switch (n.op) {
    case 'eq':
    case 'ne':
      return [n.port, n.port];
    case 'lt':
      return [0, n.port - 1];
    case 'le':
      return [0, n.port];
    case 'gt':
      return [n.port + 1, 65535];
    case 'ge':
      return [n.port, 65535];
  }
}

function comparePort(n: PortNode): FilterPredicate {
  const [lo, hi] = portRange(n);
  const inside = n.op !== 'ne';
  if (n.side === 'src') {
    return (s) => (s.sport >= lo && s.sport <= hi) === inside;
  }
  return (s) => (s.dport >= lo && s.dport <= hi) === inside;
}

export function compile(node: FilterNode): FilterPredicate {
  switch (node.type) {
    case 'true':
      return () => true;
    case 'and': {
      const l = compile(node.left);
      const r = compile(node.right);
      return (s) => l(s) && r(s);
    }
    case 'or': {
      const l = compile(node.left);
      const r = compile(node.right);
      return (s) => l(s) || r(s);
    }
    case 'not': {
      const o = compile(node.operand);
      return (s) => !o(s);
    }
    case 'state': {
      const mask = node.mask;
      return (s) => stateMatches(mask, s.state);
    }
    case 'port':
      return comparePort(node);
    case 'addr': {
      const { side, prefix } = node;
      return (s) => s.addrIn(side, prefix);
    }
    case 'pid': {
      const pid = node.pid;
      return (s) => s.pid === pid;
    }
    case 'comm': {
      const name = Buffer.from(node.comm, 'latin1');
      return (s) => s.commEquals(name);
    }
    case 'cgroup': {
      const id = node.cgroup;
      return (s) => s.cgroup === id;
    }
    case 'proto': {
      const proto = node.proto;
      return (s) => s.proto === proto;
    }
  }
}
