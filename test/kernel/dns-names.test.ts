/**
 * Names on flows and where UDP datagrams went, against the zone of
 * test/support/dns-zone: a flow to an answered address carries the name its process
 * looked up (snapshots, host rollups, close records, the stream, metrics), and
 * an unconnected UDP socket's close record names its peers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync } from 'node:child_process';
import path from 'node:path';
import { Flow, NettraceEvent, NettraceMetrics, Tracer } from '../../src';
import { captured, startAttached } from '../support/cli';
import { FIXTURES } from '../support/paths';
import { waitFor } from '../support/wait';
import { startZone, Zone } from '../support/dns-zone';

let zone: Zone;
const children: ChildProcess[] = [];
const run: Zone['run'] = (cmd, args) => zone.run(cmd, args);
const daemon = (cmd: string, args: string[]): ChildProcess => zone.daemon(cmd, args);
let server: ChildProcess;

before(async () => {
  zone = await startZone('ntdnsn');
  execFileSync('ip', ['-n', zone.netns, 'addr', 'add', '10.77.0.1/32', 'dev', 'lo']);
  // the answered address's server: reads what a client sends, closes when it does
  server = daemon(process.execPath, ['-e', "require('net').createServer((s) => s.resume().on('end', () => s.end())).listen(8077, '10.77.0.1', () => console.log('ready'))"]);
  const srv = captured(server);
  await waitFor(() => srv.out().includes('ready'), 5000, 'the server');
});

after(async () => {
  children.forEach((c) => c.kill('SIGKILL'));
  await zone?.stop();
});

test('a flow to an answered address carries the name its process looked up: in snapshots, host rollups and its close record', async () => {
  const traced = Tracer.start({ events: ['connect', 'accept', 'close', 'udp', 'dns'] });
  const metrics = new NettraceMetrics(traced, { names: true, refreshMs: 200 });
  try {
    const closes: NettraceEvent[] = [];
    const iterating = (async () => {
      for await (const e of traced) if (e.type === 'close') closes.push(e);
    })();
    let named: Flow | undefined;
    let hostName: string | null = null;
    const client = daemon(process.execPath, [path.join(FIXTURES, 'dns-client.js'), 'alias.ntdns.test', '8077', '1500']);
    const pid = client.pid!;
    for await (const snap of traced.snapshots({ intervalMs: 200 })) {
      named = snap.flows.find((f) => f.pid === pid && f.daddr === '10.77.0.1' && f.dport === 8077);
      hostName = snap.hosts.find((h) => h.host === '10.77.0.1')?.rname ?? null;
      if (named?.rname) break;
    }
    assert.equal(named?.rname, 'alias.ntdns.test');
    assert.equal(hostName, 'alias.ntdns.test');
    await new Promise((resolve) => client.on('exit', resolve));
    await waitFor(() => closes.some((e) => e.pid === pid && e.daddr === '10.77.0.1'), 5000, "the client's close record");
    const close = closes.find((e) => e.pid === pid && e.daddr === '10.77.0.1')!;
    assert.deepEqual([close.dport, close.rname], [8077, 'alias.ntdns.test']);
    // the server's side: its remote (the client's address) was looked up by another process of its namespace
    const served = closes.find((e) => e.pid === server.pid && e.sport === 8077);
    assert.equal(served?.rname, 'alias.ntdns.test');
    // the metric per name, asked for: the client's one byte each way is counted under the name
    const perName = (): Record<string, number> => {
      const fam = metrics.families().find((f) => f.name === 'nettrace_remote_name_bytes');
      return Object.fromEntries((fam?.series ?? []).map((x) => [`${x.labels.name} ${x.labels.direction}`, 'value' in x ? x.value : NaN]));
    };
    await waitFor(() => perName()['alias.ntdns.test tx'] >= 1, 5000, 'bytes per name');
    assert.equal(perName()['alias.ntdns.test tx'], 1);
    assert.ok(!metrics.families().some((f) => f.series.some((x) => Object.values(x.labels).includes('alias.ntdns.test') && f.name !== 'nettrace_remote_name_bytes')));
    void traced.stop();
    await iterating;
  } finally {
    metrics.close();
    await traced.stop();
  }
});

test("an unconnected UDP socket's close record names where its datagrams went: the top 8 peers, the rest summed", async () => {
  const traced = Tracer.start({ events: ['udp'] });
  try {
    const closes: NettraceEvent[] = [];
    const iterating = (async () => {
      for await (const e of traced) if (e.type === 'udp' && e.event === 'close') closes.push(e);
    })();
    const r = await run(process.execPath, [path.join(FIXTURES, 'udp-talker.js'), '10']);
    assert.equal(r.code, 0, r.out);
    const sent = JSON.parse(r.out) as { daddr: string; dport: number; tx_bytes: number; rx_bytes: number }[];
    await waitFor(() => closes.some((e) => e.pid === r.pid), 5000, "the talker's close record");
    const close = closes.find((e) => e.pid === r.pid)!;
    assert.equal(close.type, 'udp');
    if (close.type !== 'udp') return;
    const ranked = sent
      .map((p) => ({ family: 4, ...p, tx_datagrams: p.tx_bytes ? 1 : 0, rx_datagrams: p.rx_bytes ? 1 : 0 }))
      .sort((a, b) => b.tx_bytes + b.rx_bytes - (a.tx_bytes + a.rx_bytes));
    assert.deepEqual(close.peers, ranked.slice(0, 8));
    const rest = ranked.slice(8);
    assert.deepEqual(close.other_peers, {
      endpoints: rest.length,
      tx_bytes: rest.reduce((n, p) => n + p.tx_bytes, 0),
      rx_bytes: rest.reduce((n, p) => n + p.rx_bytes, 0),
      tx_datagrams: rest.reduce((n, p) => n + p.tx_datagrams, 0),
      rx_datagrams: rest.reduce((n, p) => n + p.rx_datagrams, 0),
    });
    assert.equal(close.tx_bytes, sent.reduce((n, p) => n + p.tx_bytes, 0));
    void traced.stop();
    await iterating;
  } finally {
    await traced.stop();
  }
});

test('the stream with --events dns: lookups as events, and close records naming their remote', async () => {
  const { child: cli, io, exited } = await startAttached(['--json', '--events', 'connect,close,dns', '-d', '5'], 'ntdns-stream');
  children.push(cli);
  const r = await run(process.execPath, [path.join(FIXTURES, 'dns-client.js'), 'deep.ntdns.test', '8077', '100']);
  assert.equal(r.out.trim(), '10.77.0.1');
  assert.equal(await exited, 0, io.err());
  const mine = io.out().trim().split('\n').map((l) => JSON.parse(l) as NettraceEvent).filter((e) => e.pid === r.pid);
  const lookup = mine.find((e) => e.type === 'dns');
  assert.ok(lookup && lookup.type === 'dns');
  assert.deepEqual([lookup.name, lookup.qtype, lookup.addresses], ['deep.ntdns.test', 'A', ['10.77.0.1']]);
  const close = mine.find((e) => e.type === 'close' && e.dport === 8077);
  assert.equal(close?.rname, 'deep.ntdns.test');
  const connect = mine.find((e) => e.type === 'connect' && e.dport === 8077);
  assert.equal(connect?.rname, 'deep.ntdns.test');
});

