/** The flow table, `nettrace flows` and `nettrace states` against the real kernel. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { Flow, FlowMonitor, FlowTable, Clock, rollup } from '../../src';
import { CLI, FIXTURES } from '../support/paths';
import { close, listen, runClient } from '../support/sockets';
import { waitFor } from '../support/wait';
import fs from 'node:fs';
import { Tracers } from '../support/tracers';

const MY_COMM = fs.readFileSync('/proc/self/comm', 'utf8').trim();

const tracers = new Tracers();
const children: ChildProcess[] = [];
after(async () => {
  await tracers.stopAll();
  children.forEach((c) => c.kill('SIGKILL'));
});
const start = tracers.start;

async function pair(port: number): Promise<{ client: net.Socket; server: net.Socket }> {
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  return { client, server: undefined as unknown as net.Socket };
}

function flowOf(m: FlowMonitor, sport: number, dport: number): Flow {
  const f = m.table.flows().find((f) => f.sport === sport && f.dport === dport);
  assert.ok(f, `no flow ${sport} > ${dport}`);
  return f;
}

test('bytes in the flow table equal the bytes exchanged, during the connection and after close', async () => {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const tracer = start({ filter: (c) => c.sport === port || c.dport === port });
  const monitor = new FlowMonitor(tracer, { graceMs: 60000 });
  const { client } = await pair(port);
  await waitFor(() => accepted.length === 1, 2000, 'accept');
  const peer = accepted[0];
  const exchange = async (up: number, down: number): Promise<void> => {
    let got = 0;
    let back = 0;
    const a = new Promise<void>((r) => peer.on('data', (d) => (got += d.length) >= up && r()));
    const b = new Promise<void>((r) => client.on('data', (d) => (back += d.length) >= down && r()));
    client.write(Buffer.alloc(up));
    peer.write(Buffer.alloc(down));
    await Promise.all([a, b]);
    peer.removeAllListeners('data');
    client.removeAllListeners('data');
  };
  await exchange(50000, 7000);
  monitor.refresh();
  let c = flowOf(monitor, client.localPort!, port);
  let s = flowOf(monitor, port, client.localPort!);
  assert.deepEqual([c.state, c.tx_bytes, c.rx_bytes, c.pid, s.tx_bytes, s.rx_bytes, s.pid], ['ESTABLISHED', 50000, 7000, process.pid, 7000, 50000, process.pid]);

  await exchange(1000000, 123);
  await new Promise((r) => setTimeout(r, 50));
  monitor.refresh();
  c = flowOf(monitor, client.localPort!, port);
  assert.deepEqual([c.tx_bytes, c.rx_bytes], [1050000, 7123], 'live, before close');
  assert.ok(c.tx_rate > 0 && c.rx_rate > 0, 'throughput over the interval');
  assert.ok(c.srtt_us !== null && c.srtt_us > 0);
  // both ends are this process: per process and per (process, host) the two directions add up
  const mine = monitor.table.flows().filter((f) => f.state !== 'LISTEN' && (f.sport === port || f.dport === port));
  const byProcess = rollup(mine, 'process').find((r) => r.pid === process.pid);
  assert.deepEqual([byProcess?.flows, byProcess?.tx_bytes, byProcess?.rx_bytes], [2, 1057123, 1057123]);
  const byPair = rollup(mine, 'process_host');
  assert.deepEqual(
    byPair.map((r) => [r.key, r.flows, r.tx_bytes]),
    [[`${process.pid}/${MY_COMM} > 127.0.0.1`, 2, 1057123]],
  );
  assert.deepEqual(rollup(mine, 'host').map((r) => [r.host, r.flows]), [['127.0.0.1', 2]]);

  const localPort = client.localPort!;
  client.end();
  await once(peer, 'end');
  peer.end();
  await once(client, 'close');
  await waitFor(() => monitor.table.flows().filter((f) => f.closed !== null).length >= 2, 2000, 'both closes');
  c = flowOf(monitor, localPort, port);
  s = flowOf(monitor, port, localPort);
  assert.deepEqual([c.tx_bytes, c.rx_bytes, s.tx_bytes, s.rx_bytes], [1050000, 7123, 7123, 1050000], 'after close');
  assert.ok(c.closed !== null && c.opened !== null && c.closed >= c.opened);
  monitor.close();
  await tracer.stop();
  server.close();
});

test('a listener and a connection opened before nettrace starts are shown with their owner', async () => {
  const holder = spawn(process.execPath, [path.join(FIXTURES, 'holder.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(holder);
  const [line] = (await once(holder.stdout!, 'data')) as [Buffer];
  const h = JSON.parse(line.toString()) as { pid: number; port: number; clientPort: number };

  const tracer = start();
  const monitor = new FlowMonitor(tracer);
  monitor.refresh();
  const listener = monitor.table.flows().find((f) => f.state === 'LISTEN' && f.sport === h.port);
  assert.ok(listener);
  assert.deepEqual([listener.pid, listener.comm, listener.saddr, listener.opened], [h.pid, 'nt-holder', '127.0.0.1', null]);
  const c = flowOf(monitor, h.clientPort, h.port);
  const s = flowOf(monitor, h.port, h.clientPort);
  assert.deepEqual([c.state, c.pid, s.state, s.pid], ['ESTABLISHED', h.pid, 'ESTABLISHED', h.pid]);
  await tracer.stop();

  const out = execFileSync(process.execPath, [CLI, 'flows', '-l', '--json', '--port', String(h.port)], { encoding: 'utf8' });
  const rows = out.trim().split('\n').map((l) => JSON.parse(l) as Flow);
  assert.deepEqual(
    rows.map((f) => [f.state, f.sport, f.pid, f.comm]),
    [['LISTEN', h.port, h.pid, 'nt-holder']],
  );
  const text = execFileSync(process.execPath, [CLI, 'flows', '--port', String(h.port)], { encoding: 'utf8' });
  assert.match(text, /^Netid +State +Recv-Q +Send-Q +Local Address:Port +Peer Address:Port +Iface +TX +RX +RTT +Process\n/);
  assert.equal(text.trim().split('\n').length, 3, 'header and both ends of the connection');
  assert.match(text, new RegExp(`ESTAB +0 +0 +127\\.0\\.0\\.1:${h.clientPort} +127\\.0\\.0\\.1:${h.port} .*nt-holder,pid=${h.pid}`));
  holder.kill('SIGKILL');
});

const SS_NAMES: Record<string, string> = {
  ESTAB: 'ESTABLISHED',
  LISTEN: 'LISTEN',
  'FIN-WAIT-1': 'FIN_WAIT1',
  'FIN-WAIT-2': 'FIN_WAIT2',
  'CLOSE-WAIT': 'CLOSE_WAIT',
  'TIME-WAIT': 'TIME_WAIT',
  'LAST-ACK': 'LAST_ACK',
  'SYN-RECV': 'SYN_RECV',
  'SYN-SENT': 'SYN_SENT',
  CLOSING: 'CLOSING',
};

function ssHistogram(port: number): Record<string, number> {
  const out = execFileSync('ss', ['-tanH', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
  const h: Record<string, number> = {};
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const s = SS_NAMES[line.split(/\s+/)[0]];
    h[s] = (h[s] ?? 0) + 1;
  }
  return h;
}

function sorted(h: Record<string, number>): [string, number][] {
  return Object.entries(h).sort(([a], [b]) => a.localeCompare(b));
}

test('the state histogram equals what ss -tan reports for sockets held in known states', async (t) => {
  const accepted: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  // whatever fails, nothing of this test stays open to hold the runner
  t.after(async () => {
    for (const s of [...clients, ...accepted]) s.destroy();
    await close(server);
  });
  for (let i = 0; i < 4; i++) {
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await once(c, 'connect');
    clients.push(c);
  }
  await waitFor(() => accepted.length === 4, 2000, 'accepts');
  // 0, 1: ESTABLISHED both ends; 2: client half-closes (FIN_WAIT2 / CLOSE_WAIT); 3: both close (TIME_WAIT)
  clients[2].end();
  await once(accepted[2], 'end');
  clients[3].end();
  await once(accepted[3], 'end');
  accepted[3].end();
  await once(clients[3], 'close');

  // the half-closer leaves FIN_WAIT1 for FIN_WAIT2 when the peer's ACK is processed, which a loaded machine delays
  const meant = { LISTEN: 1, ESTABLISHED: 4, FIN_WAIT2: 1, CLOSE_WAIT: 1, TIME_WAIT: 1 };
  await waitFor(() => JSON.stringify(sorted(ssHistogram(port))) === JSON.stringify(sorted(meant)), 5000, 'the states the test holds');
  const expected = ssHistogram(port);
  assert.deepEqual(expected, meant, 'the test holds what it meant to');
  const out = execFileSync(process.execPath, [CLI, 'states', '--json', '-c', '1', '--port', String(port)], { encoding: 'utf8' });
  const report = JSON.parse(out.trim().split('\n')[0]);
  assert.deepEqual(report.states, ssHistogram(port));
  assert.equal(report.summary.total, 8);
  assert.equal(report.summary.timewait, 1);
});

test('transitions per second come from the event stream', async () => {
  const server = await listen('127.0.0.1', 5, 5);
  const cli = spawn(process.execPath, [CLI, 'states', '--json', '-i', '1', '-c', '3', '--port', String(server.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(cli);
  const exited = once(cli, 'exit'); // a loaded machine may run the client past the third report
  let out = '';
  cli.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('\n'), 10000, 'the first report');
  await runClient('127.0.0.1', server.port, 10, 5, 5);
  await exited;
  await close(server);
  const reports = out.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(reports.length, 3);
  const total = (key: string) => reports.reduce((n, r) => n + (r.transitions[key] ?? 0), 0);
  // ten connections in total, at rates over ~1 s intervals
  assert.ok(Math.abs(total('SYN_SENT>ESTABLISHED') - 10) <= 1, `SYN_SENT>ESTABLISHED ${total('SYN_SENT>ESTABLISHED')}`);
  assert.ok(Math.abs(total('LAST_ACK>CLOSE') - 10) <= 1);
});

test('the table stays at its cap under churn and counts every eviction', async () => {
  const server = await listen('127.0.0.1', 1, 1);
  const tracer = start({ filter: (c) => c.sport === server.port || c.dport === server.port });
  const table = new FlowTable({ cap: 50, graceMs: 60000 });
  const clock = new Clock();
  const socks = new Set<number>();
  let records = 0;
  tracer.onBatch((c) => {
    while (c.next()) {
      socks.add(c.cookie);
      table.applyRecord(c, clock);
      records++;
    }
  });
  await runClient('127.0.0.1', server.port, 300, 1, 1);
  await waitFor(() => records >= 300 * 14, 5000, 'every record');
  await tracer.stop();
  await close(server);
  assert.equal(socks.size, 600);
  assert.equal(table.size, 50);
  assert.equal(table.evictions, 550);
});

test('filter expressions select the connections the test made', async () => {
  const servers = [await listen('127.0.0.1', 1, 1), await listen('::1', 1, 1)];
  const [a, b] = servers.map((s) => s.port);
  const held: net.Socket[] = [];
  for (const [host, port] of [
    ['127.0.0.1', a],
    ['127.0.0.1', a],
    ['::1', b],
  ] as const) {
    const c = net.connect({ host, port });
    await once(c, 'connect');
    held.push(c);
  }
  const run = (...args: string[]): string[] =>
    execFileSync(process.execPath, [CLI, 'flows', '-a', '--json', ...args], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Flow)
      // an earlier test's client may linger in TIME_WAIT towards a port the kernel has since given these servers
      .filter((f) => f.state !== 'TIME_WAIT')
      .map((f) => `${f.state} ${f.sport === a || f.sport === b ? 'server' : 'client'} ${f.family}`)
      .sort();
  const mine = `( sport = :${a} or dport = :${a} or sport = :${b} or dport = :${b} )`;
  const table: [string, string[]][] = [
    [`${mine}`, ['ESTABLISHED client 4', 'ESTABLISHED client 4', 'ESTABLISHED client 6', 'ESTABLISHED server 4', 'ESTABLISHED server 4', 'ESTABLISHED server 6', 'LISTEN server 4', 'LISTEN server 6']],
    [`${mine} and state listening`, ['LISTEN server 4', 'LISTEN server 6']],
    [`${mine} and state connected and src [::1]`, ['ESTABLISHED client 6', 'ESTABLISHED server 6']],
    [`dport = :${a}`, ['ESTABLISHED client 4', 'ESTABLISHED client 4']],
    [`${mine} and not dst 127.0.0.0/8 and not dst [::1]`, ['LISTEN server 4', 'LISTEN server 6']],
    [`sport = :${b} and pid ${process.pid} and comm ${MY_COMM}`, ['ESTABLISHED server 6', 'LISTEN server 6']],
    [`sport = :${b} and pid 1`, []],
    [`${mine} and sport >= :${Math.min(a, b)} and sport <= :${Math.max(a, b)} and state established and not dport = :${a} and not dport = :${b}`, ['ESTABLISHED server 4', 'ESTABLISHED server 4', 'ESTABLISHED server 6']],
  ];
  for (const [expr, expected] of table) {
    assert.deepEqual(run(expr), expected, expr);
  }
  held.forEach((c) => c.destroy());
  await Promise.all(servers.map(close));
});
