/**
 * The ss filter grammar: what each expression matches, how it groups, where
 * malformed ones are reported, what the kernel may be told, and filtering
 * records in place through a RecordCursor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterNode } from '../src/filter/ast';
import { compile } from '../src/filter/compile';
import { cursorFilter } from '../src/filter/cursor';
import { FilterSyntaxError } from '../src/filter/error';
import { kernelHints, KernelHints } from '../src/filter/hints';
import { parseFilter } from '../src/filter/parse';
import { FilterSubject, subjectOf } from '../src/filter/subject';
import { RecordCursor } from '../src/record-cursor';
import { Accept, Close, Connect, Head, Kind, State } from '../src/layout';

const SUBJECTS: Record<string, FilterSubject> = {
  web: subjectOf({ state: 1, saddr: '10.1.2.3', sport: 8080, daddr: '52.92.53.10', dport: 443, pid: 1234, comm: 'nginx', cgroup: 77 }),
  sshd: subjectOf({ state: 10, saddr: '0.0.0.0', sport: 22, daddr: '0.0.0.0', dport: 0, pid: 1, comm: 'sshd', cgroup: 5 }),
  v6: subjectOf({ state: 6, saddr: '::1', sport: 5000, daddr: '2001:db8::5', dport: 80 }),
  mapped: subjectOf({ state: 2, saddr: '::ffff:127.0.0.1', sport: 8080, daddr: '::ffff:127.0.0.1', dport: 40000, pid: 99, comm: 'curl', cgroup: 77 }),
  dns: subjectOf({ proto: 'udp', state: 7, saddr: '192.168.1.5', sport: 53, daddr: '8.8.8.8', dport: 53, pid: 500, comm: 'dnsmasq', cgroup: 9 }),
  syn: subjectOf({ state: 12, saddr: '2001:db8::1', sport: 443, daddr: '2001:db8:1::9', dport: 51000 }),
  cl: subjectOf({ state: 11, saddr: '10.200.0.1', sport: 1024, daddr: '52.92.52.1', dport: 1023, pid: 4194304, comm: 'a b(c)', cgroup: 2 ** 40 }),
};
const NAMES = Object.keys(SUBJECTS);
const ALL = NAMES.join(' ');
const allBut = (...out: string[]): string => NAMES.filter((n) => !out.includes(n)).join(' ');

/** Each expression and the subjects it matches; every other subject must not match. */
const MATCHES: [string, string][] = [
  // states, as ss names and groups them
  ['state established', 'web'],
  ['state connected', 'web v6 mapped syn cl'],
  ['state synchronized', 'web v6 syn cl'],
  ['state bucket', 'v6 syn'],
  ['state big', 'web sshd mapped dns cl'],
  ['state all', ALL],
  ['state syn-sent', 'mapped'],
  ['state syn-recv', 'syn'],
  ['state syn-rcv', 'syn'],
  ['state time-wait', 'v6'],
  ['state closed', 'dns'],
  ['state close', 'dns'],
  ['state unconnected', 'dns'],
  ['state listening', 'sshd'],
  ['State LISTEN', 'sshd'],
  ['state closing', 'cl'],
  ['state established state syn-sent', 'web mapped'],
  ['exclude time-wait', allBut('v6')],
  ['excl listening', allBut('sshd')],
  ['state all exclude listening exclude closed', 'web v6 mapped syn cl'],
  ['exclude bucket state time-wait', allBut('syn')],
  ['state established or state syn-sent', 'web mapped'],
  ['state established and state syn-sent', ''],
  ['not state established state syn-sent', allBut('web', 'mapped')],
  ['state "established"', 'web'],
  // ports, with every operator spelling
  ['sport = :8080', 'web mapped'],
  ['sport == 8080', 'web mapped'],
  ['sport eq :8080', 'web mapped'],
  ['sport=:8080', 'web mapped'],
  ['sport :22', 'sshd'],
  ['sport 22', 'sshd'],
  ['sport != :22', allBut('sshd')],
  ['sport ne :22', allBut('sshd')],
  ['sport neq :8080', 'sshd v6 dns syn cl'],
  ['dport >= :1024', 'mapped syn'],
  ['dport ge 1023', 'mapped syn cl'],
  ['dport < :1024', 'web sshd v6 dns cl'],
  ['dport lt :1024', 'web sshd v6 dns cl'],
  ['dport <= :443', 'web sshd v6 dns'],
  ['dport le :80', 'sshd v6 dns'],
  ['dport > :443', 'mapped syn cl'],
  ['dport gt :1023', 'mapped syn'],
  ['sport geq :1024', 'web v6 mapped cl'],
  ['sport leq :443', 'sshd dns syn'],
  ['sport < :0', ''],
  ['dport = :https', 'web'],
  ['sport = :ssh', 'sshd'],
  ['dport = domain', 'dns'],
  // addresses: src is the local end, dst the remote one
  ['src 10.0.0.0/8', 'web cl'],
  ['src 10.1.2.3/8', 'web cl'],
  ['dst 52.92.52.0/22', 'web cl'],
  ['dst 52.92.52/22', 'web cl'],
  ['dst 52.92.52.0/24', 'cl'],
  ['src 0.0.0.0', 'sshd'],
  ['src = 192.168.1.5', 'dns'],
  ['src != 10.0.0.0/8', allBut('web', 'cl')],
  ['src [::1]', 'v6'],
  ['src ::1', 'v6'],
  ['dst [2001:db8::]/32', 'v6 syn'],
  ['dst [2001:db8::/48]', 'v6'],
  ['dst 2001:db8::/32', 'v6 syn'],
  ['src 127.0.0.1:8080', 'mapped'],
  ['src 127.0.0.1:8081', ''],
  ['src 10.0.0.0/8:8080', 'web'],
  ['src [2001:db8::1]:443', 'syn'],
  ['src [2001:db8::]/32:443', 'syn'],
  ['dst :443', 'web'],
  ['dst *:443', 'web'],
  ['dst 8.8.8.8:*', 'dns'],
  ['src *', ALL],
  ['dst 0.0.0.0/0', 'web sshd mapped dns cl'],
  ['dst ::/0', 'v6 syn'],
  // v4-mapped IPv6 is IPv4, on either side of the comparison
  ['dst 127.0.0.1', 'mapped'],
  ['src ::ffff:127.0.0.1', 'mapped'],
  ['src [::ffff:127.0.0.0]/104', 'mapped'],
  ['src [::ffff:7f00:1]:8080', 'mapped'],
  // owners: no owner known matches no owner term
  ['pid 1234', 'web'],
  ['pid = 99', 'mapped'],
  ['pid 4194304', 'cl'],
  ['pid != 1234', allBut('web')],
  ['comm nginx', 'web'],
  ['comm NGINX', ''],
  ['comm "a b(c)"', 'cl'],
  ["comm 'a b(c)'", 'cl'],
  ['comm != nginx', allBut('web')],
  ['comm tcp', ''],
  ['cgroup 77', 'web mapped'],
  ['cgroup 1099511627776', 'cl'],
  ['cgroup ne 77', allBut('web', 'mapped')],
  ['tcp', allBut('dns')],
  ['TCP', allBut('dns')],
  ['udp', 'dns'],
  // connectives and their spellings
  ['sport = :8080 and dport = :443', 'web'],
  ['sport = :8080 AND dport = :443', 'web'],
  ['sport = :8080 && dport = :443', 'web'],
  ['sport = :8080 & dport = :443', 'web'],
  ['sport = :8080 dport = :443', 'web'],
  ['sport = :22 or dport = :53', 'sshd dns'],
  ['sport = :22 || dport = :53', 'sshd dns'],
  ['sport = :22 | dport = :53', 'sshd dns'],
  ['not tcp', 'dns'],
  ['! tcp', 'dns'],
  ['!tcp', 'dns'],
  ['not not tcp', allBut('dns')],
  ['( sport = :http or sport = :https ) and state syn-recv', 'syn'],
  ['state established ( dport = :443 or dport = :80 )', 'web'],
  ['(sport=:8080)', 'web mapped'],
  ['sport=:8080&&dport!=:22||!tcp', 'web mapped dns'],
  ['', ALL],
  ['   ', ALL],
  // precedence: not over and over or; each row would differ if grouped otherwise
  ['sport = :22 or sport = :8080 and pid 99', 'sshd mapped'],
  ['udp or tcp and pid 1', 'sshd dns'],
  ['not sport = :22 and tcp', 'web v6 mapped syn cl'],
  ['not sport = :22 or udp', allBut('sshd')],
  ['! state established or state listening', allBut('web')],
  ['not (sport = :22 or udp)', 'web v6 mapped syn cl'],
  ['(udp or tcp) and pid 1', 'sshd'],
];

for (const [expr, expected] of MATCHES) {
  test(`'${expr}' matches ${expected || 'nothing'}`, () => {
    const match = compile(parseFilter(expr));
    const got = NAMES.filter((n) => match(SUBJECTS[n]));
    assert.deepEqual(got, expected.split(' ').filter(Boolean));
  });
}

test('each TCP state name matches exactly its kernel state', () => {
  const names: [string, number[]][] = [
    ['established', [1]],
    ['syn-sent', [2]],
    ['syn-recv', [3, 12]],
    ['fin-wait-1', [4]],
    ['fin-wait-2', [5]],
    ['time-wait', [6]],
    ['closed', [7]],
    ['close-wait', [8]],
    ['last-ack', [9]],
    ['listening', [10]],
    ['listen', [10]],
    ['closing', [11]],
    ['bound-inactive', [13]],
  ];
  for (const [name, states] of names) {
    const match = compile(parseFilter(`state ${name}`));
    const got = [...Array(16).keys()].filter((state) => match(subjectOf({ state, saddr: '10.0.0.1', sport: 1, daddr: '10.0.0.2', dport: 2 })));
    assert.deepEqual(got, states, name);
  }
});

/** Fully parenthesised, to see how an expression grouped. */
function shape(n: FilterNode): string {
  switch (n.type) {
    case 'and':
    case 'or':
      return `(${n.type} ${shape(n.left)} ${shape(n.right)})`;
    case 'not':
      return `(not ${shape(n.operand)})`;
    case 'port':
      return `${n.side === 'src' ? 's' : 'd'}port.${n.op}.${n.port}`;
    case 'addr':
      return `${n.side}.${n.prefix.family}.${[...n.prefix.bytes].join('.')}/${n.prefix.bits}`;
    case 'state':
      return `state.${n.mask.toString(2)}`;
    case 'pid':
      return `pid.${n.pid}`;
    case 'comm':
      return `comm.${n.comm}`;
    case 'cgroup':
      return `cgroup.${n.cgroup}`;
    case 'proto':
      return n.proto;
    case 'true':
      return 'true';
  }
}

const SHAPES: [string, string][] = [
  ['tcp or udp and not pid 1', '(or tcp (and udp (not pid.1)))'],
  ['tcp udp or pid 1', '(or (and tcp udp) pid.1)'],
  ['tcp and udp and pid 1', '(and (and tcp udp) pid.1)'],
  ['tcp or udp or pid 1', '(or (or tcp udp) pid.1)'],
  ['not not tcp', '(not (not tcp))'],
  ['not (tcp or udp) pid 1', '(and (not (or tcp udp)) pid.1)'],
  ['state established state syn-sent tcp', '(and state.110 tcp)'],
  ['src 127.0.0.1:8080', '(and src.4.127.0.0.1/32 sport.eq.8080)'],
  ['src != 10.1.2.3/8', '(not src.4.10.0.0.0/8)'],
  ['dst != :22', '(not dport.eq.22)'],
  ['dst [::ffff:10.0.0.0]/104', 'dst.4.10.0.0.0/8'],
  ['dport > :1024', 'dport.gt.1024'],
  ['dst *', 'true'],
  ['', 'true'],
];

for (const [expr, expected] of SHAPES) {
  test(`'${expr}' groups as ${expected}`, () => {
    assert.equal(shape(parseFilter(expr)), expected);
  });
}

const TERM = "a term (state, exclude, sport, dport, src, dst, pid, comm, cgroup, tcp, udp, not, '(')";
const MORE = "'and', 'or' or another term";
const ADDRESS = 'an address like 10.0.0.0/8 or [::1]:443';
const STATES =
  'a state name (established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, all, connected, synchronized, bucket, big)';

/** Malformed input, the 0-based position reported, what was expected, and the whole message. */
const ERRORS: [string, number, string, string][] = [
  ['sport =', 7, 'a port like :8080', "filter: at column 8: expected a port like :8080 after 'sport ='"],
  ['tcp sport =', 11, 'a port like :8080', "filter: at column 12: expected a port like :8080 after 'sport ='"],
  ['dport >= :99999', 10, 'a port from 0 to 65535', "filter: at column 11: expected a port from 0 to 65535, got '99999'"],
  ['dport = :http2', 8, 'a port like :8080', "filter: at column 9: expected a port like :8080 after 'dport =', got ':http2'"],
  ['sport = and', 8, 'a port like :8080', "filter: at column 9: expected a port like :8080 after 'sport =', got 'and'"],
  ['sport = (', 8, 'a port like :8080', "filter: at column 9: expected a port like :8080 after 'sport =', got '('"],
  ['state estab', 6, STATES, `filter: at column 7: expected ${STATES} after 'state', got 'estab'`],
  ['state new-syn-recv', 6, STATES, `filter: at column 7: expected ${STATES} after 'state', got 'new-syn-recv'`],
  ['exclude', 7, STATES, `filter: at column 8: expected ${STATES} after 'exclude'`],
  ['state established state', 23, STATES, `filter: at column 24: expected ${STATES} after 'state'`],
  ['src 10.0.0.0/33', 13, 'a prefix length from 0 to 32', "filter: at column 14: expected a prefix length from 0 to 32, got '33'"],
  ['dst [2001:db8::]/129', 17, 'a prefix length from 0 to 128', "filter: at column 18: expected a prefix length from 0 to 128, got '129'"],
  ['src 10.0.0.256', 4, ADDRESS, `filter: at column 5: expected ${ADDRESS} after 'src', got '10.0.0.256'`],
  ['src 10.0.0', 4, ADDRESS, `filter: at column 5: expected ${ADDRESS} after 'src', got '10.0.0'`],
  ['src [::1', 4, ADDRESS, `filter: at column 5: expected ${ADDRESS} after 'src', got '[::1'`],
  ['src [::1]x', 9, 'a port like :8080', "filter: at column 10: expected a port like :8080, got 'x'"],
  ['src [1::2::3]', 5, ADDRESS, `filter: at column 6: expected ${ADDRESS}, got '1::2::3'`],
  ['src 1.2.3.4:', 11, 'a port like :8080', "filter: at column 12: expected a port like :8080, got ':'"],
  ['dst example.com', 4, ADDRESS, `filter: at column 5: expected ${ADDRESS} after 'dst', got 'example.com'`],
  ['src < 1.2.3.4', 4, ADDRESS, `filter: at column 5: expected ${ADDRESS} after 'src', got '<'`],
  ['dst', 3, ADDRESS, `filter: at column 4: expected ${ADDRESS} after 'dst'`],
  ['dst =', 5, ADDRESS, `filter: at column 6: expected ${ADDRESS} after 'dst ='`],
  ['pid abc', 4, 'a process id like 1234', "filter: at column 5: expected a process id like 1234 after 'pid', got 'abc'"],
  ['pid 0', 4, 'a process id like 1234', "filter: at column 5: expected a process id like 1234 after 'pid', got '0'"],
  ['pid > 5', 4, 'a process id like 1234', "filter: at column 5: expected a process id like 1234 after 'pid', got '>'"],
  ['comm', 4, 'a process name of 1 to 15 characters', "filter: at column 5: expected a process name of 1 to 15 characters after 'comm'"],
  [
    'comm = abcdefghijklmnop',
    7,
    'a process name of 1 to 15 characters',
    "filter: at column 8: expected a process name of 1 to 15 characters after 'comm =', got 'abcdefghijklmnop'",
  ],
  ['comm "nginx', 11, 'a closing " for the quote at column 6', 'filter: at column 12: expected a closing " for the quote at column 6'],
  ['cgroup /sys/fs/cgroup', 7, 'a numeric cgroup id like 1234', "filter: at column 8: expected a numeric cgroup id like 1234 after 'cgroup', got '/sys/fs/cgroup'"],
  ['(sport = :80', 12, "')' to close the '(' at column 1", "filter: at column 13: expected ')' to close the '(' at column 1"],
  ['tcp and (udp or (pid 1)', 23, "')' to close the '(' at column 9", "filter: at column 24: expected ')' to close the '(' at column 9"],
  ['(sport = :80 foo)', 13, `')', ${MORE}`, `filter: at column 14: expected ')', ${MORE}, got 'foo'`],
  ['sport = :80 )', 12, MORE, `filter: at column 13: expected ${MORE}, got ')'`],
  ['sport = :80 = 3', 12, MORE, `filter: at column 13: expected ${MORE}, got '='`],
  ['sport = :80 and', 15, TERM, `filter: at column 16: expected ${TERM} after 'and'`],
  ['sport = :80 or or tcp', 15, TERM, `filter: at column 16: expected ${TERM} after 'or', got 'or'`],
  ['tcp && || udp', 7, TERM, `filter: at column 8: expected ${TERM} after '&&', got '||'`],
  ['()', 1, TERM, `filter: at column 2: expected ${TERM} after '(', got ')'`],
  ['not', 3, TERM, `filter: at column 4: expected ${TERM} after 'not'`],
  ['foo', 0, TERM, `filter: at column 1: expected ${TERM}, got 'foo'`],
  ['-4', 0, TERM, `filter: at column 1: expected ${TERM}, got '-4'`],
  ['dev eth0', 0, TERM, `filter: at column 1: expected ${TERM}, got 'dev'`],
  ['"tcp"', 0, TERM, `filter: at column 1: expected ${TERM}, got '"tcp"'`],
];

for (const [expr, position, expected, message] of ERRORS) {
  test(`'${expr}' is rejected at offset ${position}`, () => {
    assert.throws(
      () => parseFilter(expr),
      (e: unknown) => {
        assert.ok(e instanceof FilterSyntaxError);
        assert.equal(e.name, 'FilterSyntaxError');
        assert.deepEqual([e.position, e.expected, e.message], [position, expected, message]);
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
  });
}

const HINTS: [string, KernelHints | null][] = [
  ['', null],
  ['state established', null],
  ['comm nginx and tcp', null],
  ['sport = :80', { sports: [80] }],
  ['dport = :443 or dport = :80', { dports: [80, 443] }],
  ['sport = :80 or dport = :80', { ports: [80] }],
  ['sport = :80 or dport = :443', { ports: [80, 443] }],
  ['sport = :80 and dport = :443', { sports: [80], dports: [443] }],
  ['(sport = :80 or dport = :80) and (sport = :81 or dport = :81)', { ports: [80] }],
  ['sport = :80 or state established', null],
  ['sport != :80', null],
  ['dport < :1024', null],
  ['not sport != :80', { sports: [80] }],
  ['not (sport != :80 or dport != :443)', { sports: [80], dports: [443] }],
  ['not (sport = :80 and dport = :443)', null],
  ['pid 1234', { pids: [1234] }],
  ['pid 1 or pid 2', { pids: [1, 2] }],
  ['pid 1 and pid 2', { pids: [] }],
  ['pid 1 or comm nginx', null],
  ['not pid 1', null],
  ['state established and (pid 1 or not pid 2)', null],
  ['cgroup 77 and tcp', { cgroups: [77] }],
  ['src 10.0.0.0/8', { families: [4] }],
  ['dst ::ffff:10.0.0.1', { families: [4] }],
  ['src [::1] or dst 10.0.0.1', null],
  ['src [::1] and dst 10.0.0.1', { families: [] }],
  ['not src 0.0.0.0/0', { families: [6] }],
  ['not src 10.0.0.0/8', null],
  ['src 127.0.0.1:8080', { families: [4], sports: [8080] }],
  ['pid 5 and (dport = :443 or dport = :80) and src 10.0.0.0/8', { families: [4], pids: [5], dports: [80, 443] }],
  ['not src *', { families: [], pids: [], cgroups: [], sports: [], dports: [] }],
];

for (const [expr, expected] of HINTS) {
  test(`kernelHints('${expr}')`, () => {
    assert.deepEqual(kernelHints(parseFilter(expr)), expected);
  });
}

/** Whether a subject meets every hint; a hint must never turn away a match. */
function meets(s: FilterSubject, h: KernelHints | null): boolean {
  if (!h) return true;
  const has = (list: number[] | undefined, v: number | null): boolean => !list || (v !== null && list.includes(v));
  return (
    has(h.families, s.family) &&
    has(h.pids, s.pid) &&
    has(h.cgroups, s.cgroup) &&
    has(h.sports, s.sport) &&
    has(h.dports, s.dport) &&
    (!h.ports || h.ports.includes(s.sport) || h.ports.includes(s.dport))
  );
}

test('kernelHints never exclude a match, over random expressions and subjects', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pick = <T>(xs: T[]): T => xs[rand(xs.length)];
  const ATOMS = [
    'sport = :80', 'dport = :80', 'sport != :443', 'dport >= :443', 'sport = :443', 'dport eq :22', 'pid 1', 'pid 2',
    'cgroup 7', 'src 10.0.0.0/8', 'dst [::1]', 'src 0.0.0.0/0', 'dst ::/0', 'state established', 'tcp', 'src *', 'dst :22',
  ];
  const expr = (depth: number): string => {
    const r = rand(depth > 0 ? 5 : 1);
    if (r === 0) return pick(ATOMS);
    if (r === 1) return `not ${expr(depth - 1)}`;
    return `( ${expr(depth - 1)} ${pick(['and', 'or', ''])} ${expr(depth - 1)} )`;
  };
  const subjects: FilterSubject[] = [];
  for (const [saddr, daddr] of [['10.1.1.1', '192.168.0.1'], ['::2', '::1'], ['172.16.0.1', '10.0.0.9']]) {
    for (const sport of [80, 443, 22, 5000]) {
      for (const dport of [80, 22, 443, 9000]) {
        for (const pid of [1, 2, null]) subjects.push(subjectOf({ state: 1 + rand(11), saddr, sport, daddr, dport, pid, cgroup: pid && 7 }));
      }
    }
  }
  let hinted = 0;
  for (let i = 0; i < 400; i++) {
    const text = expr(4);
    const ast = parseFilter(text);
    const match = compile(ast);
    const hints = kernelHints(ast);
    if (hints) hinted++;
    for (const s of subjects) if (match(s)) assert.ok(meets(s, hints), `${text}: ${JSON.stringify(hints)}`);
  }
  assert.ok(hinted > 50, `only ${hinted} of 400 expressions had hints`);
});

test('subjectOf takes v4-mapped addresses, and :: beside one, as IPv4', () => {
  const s = subjectOf({ state: 10, saddr: '::', sport: 80, daddr: '::ffff:10.0.0.1', dport: 0 });
  assert.equal(s.family, 4);
  assert.ok(compile(parseFilter('src 0.0.0.0 and dst 10.0.0.1'))(s));
  assert.throws(() => subjectOf({ state: 1, saddr: '10.0.0.1', sport: 1, daddr: '::1', dport: 2 }), /different families/);
  assert.throws(() => subjectOf({ state: 1, saddr: 'localhost', sport: 1, daddr: '::1', dport: 2 }), /not an IP address/);
});


interface RecordSpec {
  kind: number;
  family: 4 | 6;
  saddr: number[];
  sport: number;
  daddr: number[];
  dport: number;
  owner?: { pid: number; comm: string; cgroup: number };
  newState?: number;
  err?: number;
}

const SIZES: Record<number, number> = { [Kind.State]: State.SIZE, [Kind.Connect]: Connect.SIZE, [Kind.Accept]: Accept.SIZE, [Kind.Close]: Close.SIZE };

function record(r: RecordSpec): Buffer {
  const b = Buffer.alloc(SIZES[r.kind]);
  b.writeUInt16LE(r.kind, Head.kind);
  b.writeUInt16LE(b.length, Head.size);
  b.writeUInt16LE(r.sport, Head.sock.sport);
  b.writeUInt16LE(r.dport, Head.sock.dport);
  b.writeUInt8(r.family, Head.sock.family);
  b.set(r.saddr, Head.sock.saddr);
  b.set(r.daddr, Head.sock.daddr);
  if (r.owner) {
    b.writeUInt32LE(1, Head.owner.known);
    b.writeUInt32LE(r.owner.pid, Head.owner.pid);
    b.writeBigUInt64LE(BigInt(r.owner.cgroup), Head.owner.cgroup);
    b.write(r.owner.comm, Head.owner.comm, 'latin1');
  }
  if (r.kind === Kind.State) b.writeUInt8(r.newState ?? 0, State.new_state);
  if (r.kind === Kind.Connect) b.writeInt32LE(r.err ?? 0, Connect.err);
  return b;
}

const V6_LOOPBACK = [...Array(15).fill(0), 1];
const V6_DOC = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 5];
const nginx = { pid: 1234, comm: 'nginx', cgroup: 77 };
const BATCH = Buffer.concat([
  // 0: a listener's SYN_RECV -> ESTABLISHED, before accept names an owner
  record({ kind: Kind.State, family: 4, saddr: [10, 1, 2, 3], sport: 8080, daddr: [52, 92, 53, 10], dport: 40000, newState: 1 }),
  // 1: accepted by nginx
  record({ kind: Kind.Accept, family: 4, saddr: [10, 1, 2, 3], sport: 8080, daddr: [52, 92, 53, 10], dport: 40000, owner: nginx }),
  // 2: a connect over IPv6 that worked
  record({ kind: Kind.Connect, family: 6, saddr: V6_LOOPBACK, sport: 50000, daddr: V6_DOC, dport: 443, owner: { pid: 99, comm: 'curl', cgroup: 5 } }),
  // 3: one that was refused
  record({ kind: Kind.Connect, family: 4, saddr: [127, 0, 0, 1], sport: 50001, daddr: [127, 0, 0, 1], dport: 9, err: 111, owner: { pid: 99, comm: 'curl', cgroup: 5 } }),
  // 4: nginx's socket closing
  record({ kind: Kind.Close, family: 4, saddr: [10, 1, 2, 3], sport: 8080, daddr: [52, 92, 53, 10], dport: 40000, owner: nginx }),
  // 5: a TIME_WAIT transition
  record({ kind: Kind.State, family: 6, saddr: V6_LOOPBACK, sport: 50000, daddr: V6_DOC, dport: 443, newState: 6, owner: { pid: 99, comm: 'curl', cgroup: 5 } }),
]);

const CURSOR_CASES: [string, number[]][] = [
  ['', [0, 1, 2, 3, 4, 5]],
  ['state established', [0, 1, 2]],
  ['state closed', [3, 4]],
  ['state time-wait', [5]],
  ['state connected', [0, 1, 2, 5]],
  ['src 10.0.0.0/8', [0, 1, 4]],
  ['dst 52.92.52.0/22 and sport = :8080', [0, 1, 4]],
  ['src [::1]', [2, 5]],
  ['dst [2001:db8::]/32:443', [2, 5]],
  ['dst [2001:db8::]/32:80', []],
  ['src 127.0.0.1', [3]],
  ['pid 1234', [1, 4]],
  ['not pid 1234', [0, 2, 3, 5]],
  ['comm nginx', [1, 4]],
  ['comm curl and state connected', [2, 5]],
  ['cgroup 77', [1, 4]],
  ['tcp', [0, 1, 2, 3, 4, 5]],
  ['udp', []],
  ['dport >= :1024 or dport < :10', [0, 1, 3, 4]],
];

for (const [expr, expected] of CURSOR_CASES) {
  test(`records in a batch matching '${expr}'`, () => {
    const cursor = new RecordCursor().reset(BATCH);
    const match = cursorFilter(compile(parseFilter(expr)));
    const got: number[] = [];
    for (let i = 0; cursor.next(); i++) if (match(cursor)) got.push(i);
    assert.deepEqual(got, expected);
  });
}

test('a cursor filter set on the cursor skips records in next()', () => {
  const cursor = new RecordCursor().reset(BATCH);
  const match = cursorFilter(compile(parseFilter('comm curl')));
  cursor.filter = (c) => match(c as RecordCursor);
  const ports: number[] = [];
  while (cursor.next()) ports.push(cursor.sport);
  assert.deepEqual(ports, [50000, 50001, 50000]);
});
