/** Filter expressions applied to records in place, through a RecordCursor over a batch as the ring delivers it (the grammar itself: filter.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/filter/compile';
import { cursorFilter } from '../../src/filter/cursor';
import { parseFilter } from '../../src/filter/parse';
import { RecordCursor } from '../../src/record-cursor';
import { Accept, Close, Connect, Head, Kind, State } from '../../src/layout';

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
