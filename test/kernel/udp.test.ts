/** UDP sockets against the real kernel: open/close records, exact counts, drops, owners, peers, filters. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Clock, Flow, FlowMonitor, NettraceEvent, rollup, toEvent, Tracer } from '../../src';
import { Kind } from '../../src/layout';
import { stillThere } from '../support/bpf-objects';
import { CLI, FIXTURES } from '../support/paths';
import { waitFor } from '../support/wait';
import { Tracers } from '../support/tracers';

const MY_COMM = fs.readFileSync('/proc/self/comm', 'utf8').trim();
const NETNS = `ntudp${process.pid}`;

const tracers = new Tracers();
const children: ChildProcess[] = [];
const sockets: dgram.Socket[] = [];
function dropNetns(): void {
  try {
    execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
  } catch {
    // never made, or already gone
  }
}
after(async () => {
  await tracers.stopAll();
  children.forEach((c) => c.kill('SIGKILL'));
  sockets.forEach((s) => s.close());
  dropNetns();
});

const start = tracers.start;

/** Every UDP record as an event. */
function udpEvents(tracer: Tracer): NettraceEvent[] {
  const clock = new Clock();
  const out: NettraceEvent[] = [];
  tracer.onBatch((c) => {
    while (c.next()) if (c.kind === Kind.Udp) out.push(toEvent(c, clock));
  });
  return out;
}

interface Peer {
  child: ChildProcess;
  pid: number;
  port: number;
}

/** Starts test/kernel/fixtures/udp-peer.js (comm nt-udp) and waits for its {pid, port}. */
async function peer(args: string[], prefix: string[] = []): Promise<Peer> {
  const [cmd, ...rest] = [...prefix, process.execPath, path.join(FIXTURES, 'udp-peer.js'), ...args];
  const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const { pid, port } = JSON.parse(line.toString().split('\n')[0]) as { pid: number; port: number };
  return { child, pid, port };
}

/** A receiver in this process that counts what arrives. */
async function receiver(host: string): Promise<{ sock: dgram.Socket; port: number; got: number[] }> {
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  sockets.push(sock);
  const got: number[] = [];
  sock.on('message', (m) => got.push(m.length));
  sock.bind(0, host);
  await once(sock, 'listening');
  return { sock, port: sock.address().port, got };
}

const closeSocket = (s: dgram.Socket): Promise<void> =>
  new Promise((resolve) => {
    sockets.splice(sockets.indexOf(s), 1);
    s.close(() => resolve());
  });

const SIZES = [1, 100, 1000, 1472, 0, 7, 512, 65, 3000, 20];
const TOTAL = SIZES.reduce((a, b) => a + b, 0);

for (const host of ['127.0.0.1', '::1']) {
  const family = host === '::1' ? 6 : 4;
  test(`datagrams from another process over ${host}: exact counts and bytes, both owners, in the table and the close totals`, async () => {
    const rx = await receiver(host);
    const tracer = start();
    const events = udpEvents(tracer);
    const monitor = new FlowMonitor(tracer, { graceMs: 60000 });
    const tx = await peer(['send', host, String(rx.port), SIZES.join(',')]);
    await once(tx.child, 'exit');
    await waitFor(() => rx.got.length === SIZES.length, 15000, 'every datagram');
    await waitFor(() => events.some((e) => e.pid === tx.pid && e.type === 'udp' && e.event === 'close'), 15000, "the sender's close");

    // the sender: opened, then closed with its totals; the table keeps it through its grace period
    const mine = events.filter((e) => e.pid === tx.pid);
    assert.deepEqual(
      mine.map((e) => e.type === 'udp' && [e.event, e.comm, e.tx_datagrams, e.tx_bytes, e.rx_datagrams, e.rx_bytes, e.drops]),
      [
        ['open', 'nt-udp', 0, 0, 0, 0, 0],
        ['close', 'nt-udp', SIZES.length, TOTAL, 0, 0, 0],
      ],
    );
    const closed = mine[1];
    assert.ok(closed.type === 'udp');
    assert.deepEqual([closed.family, closed.saddr, closed.sport, closed.dport], [family, host, tx.port, 0]);
    assert.ok(closed.duration_us !== null && closed.duration_us > 0);

    monitor.refresh();
    const flows = monitor.table.flows();
    const sender = flows.find((f) => f.sock === closed.sock);
    assert.ok(sender);
    assert.deepEqual(
      [sender.proto, sender.pid, sender.comm, sender.tx_datagrams, sender.tx_bytes, sender.sport],
      ['udp', tx.pid, 'nt-udp', SIZES.length, TOTAL, tx.port],
    );
    // unconnected: its remote endpoints, from the addresses sendto named
    assert.deepEqual(
      sender.peers?.map((p) => [p.daddr, p.dport, p.tx_datagrams, p.tx_bytes, p.rx_bytes]),
      [[host, rx.port, SIZES.length, TOTAL, 0]],
    );
    const recv = flows.find((f) => f.proto === 'udp' && f.sport === rx.port && f.closed === null);
    assert.ok(recv);
    assert.deepEqual(
      [recv.pid, recv.comm, recv.state, recv.saddr, recv.rx_datagrams, recv.rx_bytes, recv.tx_bytes, recv.drops],
      [process.pid, MY_COMM, 'CLOSE', host, SIZES.length, TOTAL, 0, 0],
    );
    assert.deepEqual(
      recv.peers?.map((p) => [p.daddr, p.dport, p.rx_datagrams, p.rx_bytes]),
      [[host, tx.port, SIZES.length, TOTAL]],
    );
    // per host, the receiver counts what came from the sender's address
    const hosts = rollup([sender, recv], 'host');
    assert.deepEqual(hosts.map((h) => [h.host, h.flows, h.tx_bytes, h.rx_bytes]), [[host, 2, TOTAL, TOTAL]]);
    const procs = rollup([sender, recv], 'process').map((r) => [r.pid, r.tx_bytes, r.rx_bytes]);
    assert.deepEqual(procs.sort(), [[process.pid, 0, TOTAL], [tx.pid, TOTAL, 0]].sort());

    const sock = recv.sock;
    await closeSocket(rx.sock);
    await waitFor(() => events.some((e) => e.sock === sock && e.type === 'udp' && e.event === 'close'), 15000, "the receiver's close");
    const done = events.find((e) => e.sock === sock && e.type === 'udp' && e.event === 'close');
    assert.ok(done && done.type === 'udp');
    assert.deepEqual(
      [done.pid, done.sport, done.rx_datagrams, done.rx_bytes, done.tx_datagrams, done.drops],
      [process.pid, rx.port, SIZES.length, TOTAL, 0, 0],
    );
    monitor.close();
    await tracer.stop();
    assert.equal(tracer.stats().drops, 0);
  });
}

test('a process that sends one datagram and exits at once is attributed, in open and close', async () => {
  const rx = await receiver('127.0.0.1');
  const tracer = start({ filter: (c) => c.kind === Kind.Udp });
  const events = udpEvents(tracer);
  const tx = await peer(['blurt', '127.0.0.1', String(rx.port)]);
  await once(tx.child, 'exit');
  await waitFor(() => events.some((e) => e.pid === tx.pid && e.type === 'udp' && e.event === 'close'), 15000, 'the close at exit');
  await waitFor(() => rx.got.length === 1, 15000, 'the datagram');
  const mine = events.filter((e) => e.pid === tx.pid);
  assert.deepEqual(
    mine.map((e) => e.type === 'udp' && [e.event, e.comm, e.tx_datagrams, e.tx_bytes]),
    [
      ['open', 'nt-udp', 0, 0],
      ['close', 'nt-udp', 1, 33],
    ],
  );
  assert.equal(mine[1].sport, tx.port);
  await tracer.stop();
  await closeSocket(rx.sock);
});

/** Drops of the IPv4 UDP socket bound to `port`, as /proc/net/udp shows them. */
function procDrops(port: number, pid: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const lines = fs.readFileSync(`/proc/${pid}/net/udp`, 'utf8').trim().split('\n').slice(1);
  const line = lines.find((l) => l.trim().split(/\s+/)[1].endsWith(`:${hex}`));
  assert.ok(line, `port ${port} in /proc/net/udp`);
  return Number(line.trim().split(/\s+/).at(-1));
}

test('a receiver whose tiny buffer the test overruns shows the drops the kernel counted', async () => {
  const sink = await peer(['hold', '127.0.0.1', '1']);
  // stopped, it reads nothing: the queue fills and the kernel drops the rest
  sink.child.kill('SIGSTOP');
  const tracer = start();
  const events = udpEvents(tracer);
  const monitor = new FlowMonitor(tracer);
  const tx = dgram.createSocket('udp4');
  sockets.push(tx);
  for (let i = 0; i < 200; i++) {
    await new Promise<void>((resolve, reject) => tx.send(Buffer.alloc(1000), sink.port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  }
  const kernel = procDrops(sink.port, sink.pid);
  assert.ok(kernel > 100, `the kernel dropped ${kernel} of 200`);
  monitor.refresh();
  const f = monitor.table.flows().find((f) => f.proto === 'udp' && f.sport === sink.port && f.closed === null);
  assert.ok(f);
  assert.deepEqual([f.drops, f.pid, f.comm], [kernel, sink.pid, 'nt-udp']);
  assert.ok(f.rx_queue > 0, 'what it holds unread is its Recv-Q');
  const sock = f.sock;

  sink.child.kill('SIGKILL');
  await once(sink.child, 'exit');
  await waitFor(() => events.some((e) => e.sock === sock && e.type === 'udp' && e.event === 'close'), 15000, 'the close at exit');
  const closed = events.find((e) => e.sock === sock && e.type === 'udp' && e.event === 'close');
  assert.ok(closed && closed.type === 'udp');
  assert.deepEqual([closed.drops, closed.pid, closed.rx_datagrams], [kernel, sink.pid, 0]);
  monitor.close();
  await tracer.stop();
  await closeSocket(tx);
});

/** ss -uanp's process for the socket bound to `port`: [comm, pid]. */
function ssOwner(port: number): [string, number] {
  const out = execFileSync('ss', ['-uanpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(out);
  assert.ok(m, `ss shows an owner for :${port}: ${out}`);
  return [m[1], Number(m[2])];
}

test('a UDP socket opened before nettrace starts is listed with its owner, as ss -uanp shows it', async () => {
  const held = await peer(['hold', '127.0.0.1']);
  const tracer = start();
  const monitor = new FlowMonitor(tracer);
  monitor.refresh();
  const f = monitor.table.flows().find((f) => f.proto === 'udp' && f.sport === held.port);
  assert.ok(f);
  assert.deepEqual([f.comm, f.pid], ssOwner(held.port));
  assert.deepEqual([f.pid, f.state, f.saddr, f.opened], [held.pid, 'CLOSE', '127.0.0.1', null]);
  monitor.close();
  await tracer.stop();
  const { programs, links } = tracer.kernelIds;
  assert.deepEqual(stillThere({ programs, links }), { programs: [], links: [] }, 'every program and link is gone');

  const rows = execFileSync(process.execPath, [CLI, 'flows', '-ul', '--json', '--port', String(held.port)], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Flow);
  assert.deepEqual(
    rows.map((r) => [r.proto, r.state, r.sport, r.pid, r.comm]),
    [['udp', 'CLOSE', held.port, held.pid, 'nt-udp']],
  );
  const text = execFileSync(process.execPath, [CLI, 'flows', '-ul', '--port', String(held.port)], { encoding: 'utf8' });
  assert.match(text, new RegExp(`^State .*\\nUNCONN +0 +0 +127\\.0\\.0\\.1:${held.port} +0\\.0\\.0\\.0:\\* .*nt-udp,pid=${held.pid}\\n$`));
  held.child.kill('SIGKILL');
});

/** Ids of attached links of programs named udp_release. */
function releaseLinks(): number[] {
  const json = (kind: string) => JSON.parse(execFileSync('bpftool', ['-j', kind, 'show'], { encoding: 'utf8' }) || '[]') as { id: number; name?: string; prog_id?: number }[];
  const progs = new Set(json('prog').filter((p) => p.name === 'udp_release').map((p) => p.id));
  return json('link').filter((l) => l.prog_id !== undefined && progs.has(l.prog_id)).map((l) => l.id);
}

test('filters udp and dport = :53, -u and -t select from TCP and UDP traffic the test made', async () => {
  execFileSync('ip', ['netns', 'add', NETNS]);
  execFileSync('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
  const inNs = ['ip', 'netns', 'exec', NETNS];
  // in a namespace of its own, so port 53 is free and nothing else is there
  const mix = spawn(inNs[0], [...inNs.slice(1), process.execPath, path.join(FIXTURES, 'udp-mix.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(mix);
  const [line] = (await once(mix.stdout!, 'data')) as [Buffer];
  const m = JSON.parse(line.toString()) as { pid: number; tcp: number; udp: number };
  const run = (...args: string[]): string[] =>
    execFileSync(inNs[0], [...inNs.slice(1), process.execPath, CLI, 'flows', '-a', '--json', ...args], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const f = JSON.parse(l) as Flow;
        assert.equal(f.pid, m.pid, 'every socket there is the fixture\'s');
        return `${f.proto} ${f.state} ${f.sport === 53 || f.sport === m.tcp || f.sport === m.udp ? 'server' : 'client'} ${f.dport === 0 ? '*' : f.dport === 53 ? 53 : 'other'}`;
      })
      .sort();
  const tcp = ['tcp ESTABLISHED client other', 'tcp ESTABLISHED server other', 'tcp LISTEN server *'];
  const udp = ['udp CLOSE server *', 'udp CLOSE server *', 'udp ESTABLISHED client 53', 'udp ESTABLISHED client other'];
  assert.deepEqual(run(), [...tcp, ...udp].sort());
  assert.deepEqual(run('udp and dport = :53'), ['udp ESTABLISHED client 53']);
  assert.deepEqual(run('-u'), udp);
  assert.deepEqual(run('-t'), tcp);
  assert.deepEqual(run('tcp'), tcp);
  assert.deepEqual(run('-u', 'dport = :53 or sport = :53'), ['udp CLOSE server *', 'udp ESTABLISHED client 53']);
  assert.deepEqual(run('-t', 'dport = :53'), []);

  // the stream, in the first namespace: the fixture's socket connected to :53 closes at its exit
  const linksBefore = new Set(releaseLinks());
  const cli = spawn(process.execPath, [CLI, '--json', '-p', String(m.pid), 'udp and dport = :53'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(cli);
  let out = '';
  cli.stdout!.on('data', (d) => (out += d));
  await waitFor(() => releaseLinks().some((id) => !linksBefore.has(id)), 15000, "the CLI's sock_release program attached");
  mix.kill('SIGUSR2'); // 3 datagrams each way while traced, then exit
  await once(mix, 'exit');
  await waitFor(() => out.includes('\n'), 15000, 'the close of the socket connected to :53');
  cli.kill('SIGINT');
  await once(cli, 'exit');
  const events = out.trim().split('\n').map((l) => JSON.parse(l) as NettraceEvent);
  assert.deepEqual(
    events.map((e) => e.type === 'udp' && [e.event, e.pid, e.dport, e.tx_datagrams, e.rx_datagrams]),
    [['close', m.pid, 53, 3, 3]],
  );
  dropNetns();
});
