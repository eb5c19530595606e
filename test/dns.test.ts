/**
 * DNS lookups against real DNS software in a network namespace of the test's
 * own: dnsmasq serving a local zone on 127.0.0.1 and ::1, forwarding one
 * domain to a broken upstream (SERVFAIL) and one to an address where nothing
 * answers, queried by dig (UDP and TCP), glibc (getent) and Node's resolver.
 * Every event is checked exactly: the asking process, server, name, type,
 * rcode, CNAME chain, addresses and latency.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import protobuf from 'protobufjs';
import { decodeAll, FORMAT_VERSION, DnsEvent, DnsNames, encodeItems, Flow, NettraceEvent, NettraceMetrics, OtlpSink, Tracer } from '../src';
import { captured, CLI, FIXTURES, waitFor } from './helpers';

const NETNS = `ntdns${process.pid}`;
const RESOLV_DIR = `/etc/netns/${NETNS}`; // ip netns exec mounts its resolv.conf over /etc/resolv.conf
const children: ChildProcess[] = [];
const events: DnsEvent[] = [];
let tracer: Tracer;
let dnsmasq: ChildProcess;

const ZONE = [
  '--host-record=www.ntdns.test,10.77.0.1,fd77::1',
  '--cname=alias.ntdns.test,www.ntdns.test',
  '--cname=deep.ntdns.test,alias.ntdns.test',
  '--local=/ntdns.test/',
  '--local-ttl=300',
  '--server=/broken.test/127.0.0.2',
  '--server=/silent.test/127.0.0.3', // nothing listens there: dnsmasq never answers
];

function netns(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

/** Runs a command in the namespace to its end: its pid, exit code, output and wall time. */
function run(cmd: string, args: string[]): Promise<{ pid: number; code: number | null; out: string; ms: number }> {
  const t0 = process.hrtime.bigint();
  const child = spawn('ip', ['netns', 'exec', NETNS, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const io = captured(child);
  return new Promise((resolve) =>
    child.on('exit', (code) => resolve({ pid: child.pid!, code, out: io.out() + io.err(), ms: Number(process.hrtime.bigint() - t0) / 1e6 })),
  );
}

/** Starts a long-running process in the namespace. */
function daemon(cmd: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', NETNS, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

async function lookupsOf(pid: number, n: number): Promise<DnsEvent[]> {
  await waitFor(() => events.filter((e) => e.pid === pid).length >= n, 8000, `${n} lookups of pid ${pid}`);
  return events.filter((e) => e.pid === pid);
}

before(async () => {
  netns('netns', 'add', NETNS);
  netns('-n', NETNS, 'link', 'set', 'lo', 'up');
  fs.mkdirSync(RESOLV_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESOLV_DIR, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  tracer = Tracer.start({ events: ['dns'], trackSockets: false, dnsTimeoutMs: 1500 });
  void (async () => {
    for await (const e of tracer as AsyncIterable<NettraceEvent>) if (e.type === 'dns') events.push(e);
  })();
  const upstream = daemon(process.execPath, [path.join(FIXTURES, 'dns-upstream.js'), '127.0.0.2']);
  const up = captured(upstream);
  await waitFor(() => up.out().includes('ready'), 5000, 'the broken upstream');
  dnsmasq = daemon('dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--pid-file=', '--bind-interfaces',
    '--listen-address=127.0.0.1', '--listen-address=::1', ...ZONE]);
  for (let i = 0; ; i++) {
    const r = await run('dig', ['+short', '+tries=1', '+time=1', '@127.0.0.1', 'www.ntdns.test', 'A']);
    if (r.out.trim() === '10.77.0.1') break;
    if (i === 20) throw new Error(`dnsmasq does not answer: ${r.out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  await tracer?.stop();
  children.forEach((c) => c.kill('SIGKILL'));
  try {
    execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
  } catch {
    // never made
  }
  fs.rmSync(RESOLV_DIR, { recursive: true, force: true });
});

/** The fields every answered lookup from dig to dnsmasq on 127.0.0.1 has. */
function expectFromDig(e: DnsEvent, pid: number, ms: number): void {
  assert.equal(e.pid, pid);
  assert.equal(e.family, 4);
  assert.equal(e.saddr, '127.0.0.1');
  assert.equal(e.daddr, '127.0.0.1');
  assert.equal(e.dport, 53);
  assert.ok(e.sport > 0 && e.sport !== 53);
  assert.equal(e.timeout, false);
  // the kernel's query-to-answer time, bounded by the whole dig process's
  assert.ok(e.latency_us !== null && e.latency_us > 0 && e.latency_us < ms * 1000, `latency ${e.latency_us} us in a ${ms} ms run`);
}

test('a UDP query through a CNAME chain: the asking process, name, type, chain and address', async () => {
  const r = await run('dig', ['+tries=1', '@127.0.0.1', 'deep.ntdns.test', 'A']);
  assert.match(r.out, /status: NOERROR/);
  const [e, ...more] = await lookupsOf(r.pid, 1);
  assert.equal(more.length, 0);
  expectFromDig(e, r.pid, r.ms);
  assert.deepEqual(
    { proto: e.proto, name: e.name, qtype: e.qtype, rcode: e.rcode, cnames: e.cnames, addresses: e.addresses },
    { proto: 'udp', name: 'deep.ntdns.test', qtype: 'A', rcode: 'NOERROR', cnames: ['alias.ntdns.test', 'www.ntdns.test'], addresses: ['10.77.0.1'] },
  );
  assert.deepEqual(e.answers.map((a) => [a.name, a.type, a.ttl, a.data]), [
    ['deep.ntdns.test', 'CNAME', 300, 'alias.ntdns.test'],
    ['alias.ntdns.test', 'CNAME', 300, 'www.ntdns.test'],
    ['www.ntdns.test', 'A', 300, '10.77.0.1'],
  ]);
  const id = Number(/id: (\d+)/.exec(r.out)![1]);
  assert.equal(e.id, id);
});

test('NXDOMAIN for a name the local zone lacks', async () => {
  const r = await run('dig', ['+tries=1', '@127.0.0.1', 'nope.ntdns.test', 'AAAA']);
  assert.match(r.out, /status: NXDOMAIN/);
  const [e] = await lookupsOf(r.pid, 1);
  expectFromDig(e, r.pid, r.ms);
  assert.deepEqual([e.name, e.qtype, e.rcode, e.addresses], ['nope.ntdns.test', 'AAAA', 'NXDOMAIN', []]);
});

test('SERVFAIL from a broken upstream, seen from dig and from dnsmasq forwarding to it', async () => {
  const r = await run('dig', ['+tries=1', '@127.0.0.1', 'x.broken.test', 'A']);
  assert.match(r.out, /status: SERVFAIL/);
  const [e] = await lookupsOf(r.pid, 1);
  expectFromDig(e, r.pid, r.ms);
  assert.deepEqual([e.name, e.rcode], ['x.broken.test', 'SERVFAIL']);
  const forwarded = events.filter((f) => f.pid === dnsmasq.pid && f.name === 'x.broken.test');
  assert.equal(forwarded.length, 1);
  assert.deepEqual([forwarded[0].comm, forwarded[0].daddr, forwarded[0].dport, forwarded[0].rcode], ['dnsmasq', '127.0.0.2', 53, 'SERVFAIL']);
});

test('a query over TCP, to the server on ::1', async () => {
  const r = await run('dig', ['+tcp', '+tries=1', '@::1', 'www.ntdns.test', 'AAAA']);
  assert.match(r.out, /status: NOERROR/);
  const [e] = await lookupsOf(r.pid, 1);
  assert.deepEqual(
    { pid: e.pid, proto: e.proto, family: e.family, saddr: e.saddr, daddr: e.daddr, dport: e.dport, name: e.name, qtype: e.qtype, rcode: e.rcode, addresses: e.addresses },
    { pid: r.pid, proto: 'tcp', family: 6, saddr: '::1', daddr: '::1', dport: 53, name: 'www.ntdns.test', qtype: 'AAAA', rcode: 'NOERROR', addresses: ['fd77::1'] },
  );
  assert.ok(e.latency_us !== null && e.latency_us < r.ms * 1000);
});

test('glibc (getent ahosts) asks for A and AAAA', async () => {
  const r = await run('getent', ['ahosts', 'alias.ntdns.test']);
  assert.equal(r.code, 0);
  const got = await lookupsOf(r.pid, 2);
  assert.deepEqual(
    got.map((e) => [e.comm, e.proto, e.name, e.qtype, e.rcode, e.cnames.join(','), e.addresses.join(',')]).sort(),
    [
      ['getent', 'udp', 'alias.ntdns.test', 'A', 'NOERROR', 'www.ntdns.test', '10.77.0.1'],
      ['getent', 'udp', 'alias.ntdns.test', 'AAAA', 'NOERROR', 'www.ntdns.test', 'fd77::1'],
    ],
  );
});

test("Node's resolver", async () => {
  const r = await run(process.execPath, ['-e', "require('dns').promises.resolve4('www.ntdns.test').then((a) => console.log(a.join()))"]);
  assert.equal(r.out.trim(), '10.77.0.1');
  const [e] = await lookupsOf(r.pid, 1);
  assert.deepEqual([e.comm, e.name, e.qtype, e.rcode, e.addresses], ['node', 'www.ntdns.test', 'A', 'NOERROR', ['10.77.0.1']]);
});

test('a query nobody answers is reported as a timeout, from the client and from dnsmasq', async () => {
  const r = await run('dig', ['+tries=1', '+time=1', '@127.0.0.1', 'x.silent.test', 'A']);
  assert.match(r.out, /timed out/);
  const [e] = await lookupsOf(r.pid, 1);
  assert.deepEqual([e.name, e.timeout, e.rcode, e.latency_us, e.answers], ['x.silent.test', true, null, null, []]);
  await waitFor(() => events.some((f) => f.pid === dnsmasq.pid && f.name === 'x.silent.test'), 5000, "dnsmasq's timeout");
  const upstream = events.filter((f) => f.pid === dnsmasq.pid && f.name === 'x.silent.test');
  assert.equal(upstream.length, 1);
  assert.deepEqual([upstream[0].daddr, upstream[0].timeout], ['127.0.0.3', true]);
});

test('a flow to an answered address carries the name its process looked up: in snapshots, host rollups and its close record', async () => {
  netns('-n', NETNS, 'addr', 'add', '10.77.0.1/32', 'dev', 'lo');
  const server = daemon(process.execPath, ['-e', "require('net').createServer((s) => s.resume().on('end', () => s.end())).listen(8077, '10.77.0.1', () => console.log('ready'))"]);
  const srv = captured(server);
  await waitFor(() => srv.out().includes('ready'), 5000, 'the server');
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

test('names live for their TTL (at least a minute), per process first, bounded with evictions counted', () => {
  const names = new DnsNames({ maxEntries: 2 });
  const lookup = (pid: number, name: string, addr: string, ttl: number): DnsEvent =>
    ({ type: 'dns', netns: 1, pid, name, cnames: [], answers: [{ name, type: 'A', ttl, data: addr }] }) as unknown as DnsEvent;
  names.learn(lookup(10, 'a.test', '10.0.0.1', 300), 0);
  names.learn(lookup(11, 'b.test', '10.0.0.1', 0), 0);
  assert.equal(names.name(1, 10, '10.0.0.1', 1000), 'a.test'); // its own lookup
  assert.equal(names.name(1, 12, '10.0.0.1', 1000), 'b.test'); // the namespace's latest
  assert.equal(names.name(2, 10, '10.0.0.1', 1000), null); // another namespace
  assert.equal(names.name(1, 12, '10.0.0.1', 60_001), null); // TTL 0 held a minute
  assert.equal(names.name(1, 10, '10.0.0.1', 299_000), 'a.test');
  assert.equal(names.name(1, 10, '10.0.0.1', 300_001), null);
  names.learn(lookup(10, 'c.test', '10.0.0.3', 300), 0);
  names.learn(lookup(10, 'd.test', '10.0.0.4', 300), 0);
  assert.equal(names.evictions, 1); // (pid 11, 10.0.0.1) went: the others had expired
  assert.equal(names.name(1, null, '10.0.0.4', 1), 'd.test');
});

test('nettrace dns prints each lookup, and a summary with the counts', async () => {
  const ids = `/tmp/ntdns-ids-${process.pid}`;
  const cli = spawn(process.execPath, [CLI, 'dns', '--json', '--timeout', '1000', '-d', '3'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NETTRACE_KERNEL_IDS: ids },
  });
  children.push(cli);
  const io = captured(cli);
  const exited = new Promise<number | null>((resolve) => cli.on('exit', resolve));
  try {
    await waitFor(() => fs.existsSync(ids), 5000, 'the CLI to attach');
  } finally {
    fs.rmSync(ids, { force: true });
  }
  const r = await run('dig', ['+tries=1', '@127.0.0.1', 'alias.ntdns.test', 'A']);
  assert.equal(await exited, 0, io.err());
  const lines = io.out().trim().split('\n').map((l) => JSON.parse(l) as DnsEvent);
  const mine = lines.filter((e) => e.pid === r.pid);
  assert.equal(mine.length, 1);
  assert.deepEqual([mine[0].type, mine[0].name, mine[0].rcode, mine[0].cnames, mine[0].addresses], ['dns', 'alias.ntdns.test', 'NOERROR', ['www.ntdns.test'], ['10.77.0.1']]);
  const summary = JSON.parse(io.err().trim().split('\n').at(-1)!);
  assert.equal(summary.type, 'summary');
  assert.equal(summary.lookups, lines.length);
  assert.ok(summary.answered >= 1 && summary.kernel_messages >= 2);
  assert.equal(summary.drops, 0);
});

test('lookups survive a protobuf round trip whole', () => {
  const some = events.filter((e) => e.answers.length > 0 || e.timeout).slice(0, 5);
  assert.ok(some.length >= 3);
  const header = { type: 'header', version: FORMAT_VERSION, producer: 'test', hostname: 'h', started: 1, command: 'dns' } as const;
  const { items, error } = decodeAll(encodeItems([header, ...some]));
  assert.equal(error, undefined);
  assert.deepEqual(items.slice(1), some);
});

test('OTLP logs: one record per lookup, with the question, answers and rcode as attributes', async () => {
  const protos = path.join(path.dirname(require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json')), 'build', 'protos');
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(protos, target);
  root.loadSync('opentelemetry/proto/collector/logs/v1/logs_service.proto');
  const type = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
  type KV = { key: string; value: { stringValue?: string; intValue?: number } };
  const records: { body: string; attributes: Record<string, string | number | undefined> }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf' }).end();
      if (req.url !== '/v1/logs') return; // the metrics' export
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = zlib.gunzipSync(raw);
      const body = type.toObject(type.decode(raw), { longs: Number }) as {
        resourceLogs?: { scopeLogs?: { logRecords?: { body: { stringValue: string }; attributes: KV[] }[] }[] }[];
      };
      for (const rl of body.resourceLogs ?? [])
        for (const sl of rl.scopeLogs ?? [])
          for (const lr of sl.logRecords ?? [])
            records.push({ body: lr.body.stringValue, attributes: Object.fromEntries(lr.attributes.map((kv) => [kv.key, kv.value.stringValue ?? kv.value.intValue])) });
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as net.AddressInfo).port;
  const traced = Tracer.start({ events: ['dns'], trackSockets: false });
  const metrics = new NettraceMetrics(traced, { refreshMs: 200 });
  const sink = OtlpSink.start(traced, metrics, { endpoint: `http://127.0.0.1:${port}/`, logs: true, intervalMs: 3_600_000 });
  let pid = 0;
  try {
    const r = await run('dig', ['+tries=1', '@127.0.0.1', 'deep.ntdns.test', 'A']);
    pid = r.pid;
    await lookupsOf(pid, 1); // the other tracer saw it: this one has too, within its flush
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await sink.shutdown();
    metrics.close();
    await traced.stop();
    server.close();
  }
  const mine = records.filter((l) => l.attributes['process.pid'] === pid);
  assert.equal(mine.length, 1);
  assert.equal(mine[0].body, 'dns A deep.ntdns.test NOERROR via alias.ntdns.test > www.ntdns.test 10.77.0.1');
  const a = mine[0].attributes;
  assert.deepEqual(
    [a['event.name'], a['network.transport'], a['network.peer.address'], a['network.peer.port'], a['dns.question.name'], a['dns.answers'], a['nettrace.rcode'], a['nettrace.qtype'], a['nettrace.timeout']],
    ['nettrace.dns', 'udp', '127.0.0.1', 53, 'deep.ntdns.test', '["10.77.0.1"]', 'NOERROR', 'A', 'false'],
  );
});

test('the stream with --events dns: lookups as events, and close records naming their remote', async () => {
  const ids = `/tmp/ntdns-ids-stream-${process.pid}`;
  const cli = spawn(process.execPath, [CLI, '--json', '--events', 'connect,close,dns', '-d', '5'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NETTRACE_KERNEL_IDS: ids },
  });
  children.push(cli);
  const io = captured(cli);
  const exited = new Promise<number | null>((resolve) => cli.on('exit', resolve));
  try {
    await waitFor(() => fs.existsSync(ids), 5000, 'the CLI to attach');
  } finally {
    fs.rmSync(ids, { force: true });
  }
  const r = await run(process.execPath, [path.join(FIXTURES, 'dns-client.js'), 'deep.ntdns.test', '8077', '100']);
  assert.equal(r.out.trim(), '10.77.0.1'); // the server of the names test still listens
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

test('bad options: one line and exit 2', () => {
  for (const [args, msg] of [
    [['dns', '--timeout', 'soon'], /--timeout must be a whole number/],
    [['dns', '--format', 'xml'], /--format/],
    [['--events', 'dnss'], /--events takes a comma list of connect, accept, state, close, udp, dns, not 'dnss'/],
  ] as const) {
    let err = '';
    let status = 0;
    try {
      execFileSync(process.execPath, [CLI, ...args], { stdio: 'pipe' });
    } catch (e) {
      const x = e as { status: number; stderr: Buffer };
      status = x.status;
      err = x.stderr.toString();
    }
    assert.equal(status, 2, args.join(' '));
    assert.equal(err.trim().split('\n').length, 1, err);
    assert.match(err, msg);
  }
});
