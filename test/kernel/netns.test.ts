/**
 * --netns: an agent scoped to one network namespace counts only its sockets,
 * though the same programs talk in another namespace and on the host at once;
 * the kernel filter decides it and the snapshots read inside the namespace.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { decodeSnapshot, NettraceError, Tracer } from '../../src';
import { valueOf } from '../support/exposition';
import { CLI } from '../support/paths';
import { Exchange, expectedCounts, peerClient, peerServer } from '../support/peer';
import { scrape, startServe } from '../support/serve';
import { makeNetns, removeNetns } from '../support/netns';

const NS = ['ntfl-n1', 'ntfl-n2', 'ntfl-n3'];
const children: ChildProcess[] = [];
after(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  NS.forEach(removeNetns);
});

test('serve --netns NAME, PATH or INODE counts exactly the connections, bytes and sockets of that namespace', async () => {
  ['ntfl-n1', 'ntfl-n2'].forEach(makeNetns);
  const x1: Exchange = { ok: 3, resets: 1, refused: 2, send: 300, reply: 500 };
  const x2: Exchange = { ok: 5, resets: 2, refused: 1, send: 70, reply: 90 };
  const inode = fs.statSync('/run/netns/ntfl-n1').ino;
  for (const spec of ['ntfl-n1', '/run/netns/ntfl-n1', String(inode)]) {
    const served = await startServe(['--listen', '127.0.0.1:0', '--netns', spec], process.env, children);
    const p1 = await peerServer('127.0.0.1', x1, children, 'ntfl-n1');
    const p2 = await peerServer('127.0.0.1', x2, children, 'ntfl-n2');
    // port 9: nothing listens in a new namespace
    await Promise.all([peerClient('127.0.0.1', p1.port, 9, x1, undefined, 'ntfl-n1'), peerClient('127.0.0.1', p2.port, 9, x2, undefined, 'ntfl-n2')]);
    const want = expectedCounts(x1);
    const checks = [
      ...want.client.map(([n, l, v]) => [n, { ...l, comm: 'nt-mclient' }, v] as const),
      ...want.server.map(([n, l, v]) => [n, { ...l, comm: 'nt-mserver' }, v] as const),
      // everything counted is n1's: no other process, no other socket
      ['nettrace_tcp_connects_total', {}, x1.ok + x1.resets + x1.refused] as const,
      ['nettrace_tcp_accepts_total', {}, x1.ok + x1.resets] as const,
      ['nettrace_process_bytes_total', {}, 2 * (x1.ok + x1.resets) * (x1.send + x1.reply)] as const,
      ['nettrace_tcp_sockets', { state: 'LISTEN' }, 1] as const,
    ];
    const end = Date.now() + 20000;
    let pending: string[] = [];
    while (Date.now() < end) {
      const s = await scrape(served.port);
      pending = checks.filter(([n, l, v]) => valueOf(s, n, l) !== v).map(([n, l, v]) => `${n}${JSON.stringify(l)}=${valueOf(s, n, l)} want ${v}`);
      if (pending.length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(pending, [], `--netns ${spec}`);
    served.child.kill('SIGTERM');
    assert.equal((await served.done).code, 0);
    p1.child.kill('SIGTERM');
    p2.child.kill('SIGTERM');
  }
});

test('--netns naming no network namespace: one line and exit 1', () => {
  for (const [spec, why] of [
    ['ntfl-nope', /^nettrace: network namespace 'ntfl-nope': unknown name \(no \/run\/netns\/ntfl-nope; ip netns list shows the names\)\n$/],
    ['4000000001', /^nettrace: network namespace '4000000001': no \/run\/netns entry or process is in a namespace with that inode\n$/],
    ['/etc/hostname', /^nettrace: network namespace '\/etc\/hostname': \/etc\/hostname is not a namespace file\n$/],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, 'flows', '--netns', spec], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, why);
  }
});

test('a namespace that vanishes while traced: one line, and the agent keeps serving /metrics', async () => {
  makeNetns('ntfl-n3');
  const served = await startServe(['--listen', '127.0.0.1:0', '--netns', 'ntfl-n3'], process.env, children);
  removeNetns('ntfl-n3');
  const end = Date.now() + 10000;
  while (!/is gone/.test(served.stderr()) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.match(served.stderr(), /\nnettrace: network namespace 'ntfl-n3' is gone \(\/run\/netns\/ntfl-n3 no longer names it\): nothing more will be seen there\n$/);
  assert.ok((await scrape(served.port)).some((s) => s.name === 'nettrace_records_total'), '/metrics still answers');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(served.stderr().split('\n').filter((l) => /is gone/.test(l)).length, 1, 'said once');
  served.child.kill('SIGTERM');
  assert.equal((await served.done).code, 0);
});

test('the library: Tracer.start({ netns }) resolves it, snapshots list that namespace only, and a bad one throws EINVAL', async () => {
  makeNetns('ntfl-n1');
  const x: Exchange = { ok: 1, resets: 0, refused: 0, send: 1, reply: 1 };
  const peer = await peerServer('127.0.0.1', x, children, 'ntfl-n1');
  const inode = fs.statSync('/run/netns/ntfl-n1').ino;
  const tracer = Tracer.start({ netns: inode });
  try {
    assert.deepEqual(tracer.netns, { spec: String(inode), inode, path: '/run/netns/ntfl-n1' });
    const rows = decodeSnapshot(tracer.snapshot());
    assert.deepEqual(rows.map((r) => [r.netns, r.sport, r.state]), [[inode, peer.port, 10]], 'its one listener, nothing of the host');
  } finally {
    await tracer.stop();
    peer.child.kill('SIGTERM');
  }
  assert.throws(() => Tracer.start({ netns: 'ntfl-nope' }), (e: unknown) => e instanceof NettraceError && e.code === 'EINVAL' && /unknown name/.test(e.message));
});

test('states --netns: the kernel counts only that namespace\'s transitions, and its histogram is that namespace\'s sockets', async () => {
  ['ntfl-n1', 'ntfl-n2'].forEach(makeNetns);
  const x1: Exchange = { ok: 3, resets: 0, refused: 2, send: 10, reply: 10 };
  const x2: Exchange = { ok: 4, resets: 0, refused: 1, send: 10, reply: 10 };
  const p1 = await peerServer('127.0.0.1', x1, children, 'ntfl-n1');
  const p2 = await peerServer('127.0.0.1', x2, children, 'ntfl-n2');
  const states = spawn(process.execPath, [CLI, 'states', '--netns', 'ntfl-n1', '--json', '-i', '0.5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(states);
  const reports: { states: Record<string, number>; counts: Record<string, number> }[] = [];
  let buf = '';
  states.stdout!.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) reports.push(JSON.parse(buf.slice(0, i)));
  });
  const sum = (key: string): number => reports.reduce((n, r) => n + (r.counts[key] ?? 0), 0);
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    for (const end = Date.now() + 20000; !cond(); await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(reports.slice(-3))}`);
    }
  };
  await until(() => reports.length > 0, 'the first report');
  await Promise.all([peerClient('127.0.0.1', p1.port, 9, x1, undefined, 'ntfl-n1'), peerClient('127.0.0.1', p2.port, 9, x2, undefined, 'ntfl-n2')]);
  await until(() => sum('SYN_SENT>ESTABLISHED') >= x1.ok && reports.length >= 2, "n1's connections");
  await new Promise((r) => setTimeout(r, 1200)); // two more reports: nothing of n2 arrives late
  assert.equal(sum('SYN_SENT>ESTABLISHED'), x1.ok);
  assert.equal(sum('LISTEN>SYN_RECV'), x1.ok);
  assert.equal(sum('SYN_SENT>CLOSE'), x1.refused);
  assert.equal(reports[reports.length - 1].states.LISTEN, 1, 'the histogram is n1\'s: its one listener');
  states.kill('SIGINT');
  await once(states, 'exit');
  assert.equal(states.exitCode, 0);
  p1.child.kill('SIGTERM');
  p2.child.kill('SIGTERM');
});
