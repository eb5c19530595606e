/**
 * DNS lookups against real DNS software (test/support/dns-zone: dnsmasq serving a local
 * zone in a network namespace of the test's own, a broken upstream, a silent
 * one), asked by dig (UDP and TCP), glibc (getent) and Node's resolver. Every
 * event is checked exactly: the asking process, server, name, type, rcode,
 * CNAME chain, addresses and latency; then the CLI, protobuf and OTLP.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import protobuf from 'protobufjs';
import { decodeAll, FORMAT_VERSION, DnsEvent, encodeItems, NettraceMetrics, OtlpSink, Tracer } from '../../src';
import { startAttached } from '../support/cli';
import { CLI } from '../support/paths';
import { waitFor } from '../support/wait';
import { startZone, Zone } from '../support/dns-zone';

let zone: Zone;
let events: DnsEvent[];
let dnsmasq: ChildProcess;
const children: ChildProcess[] = [];
const run: Zone['run'] = (cmd, args) => zone.run(cmd, args);
const lookupsOf: Zone['lookupsOf'] = (pid, n) => zone.lookupsOf(pid, n);

before(async () => {
  zone = await startZone('ntdns');
  ({ events, dnsmasq } = zone);
});

after(async () => {
  children.forEach((c) => c.kill('SIGKILL'));
  await zone?.stop();
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

test('nettrace dns prints each lookup, and a summary with the counts', async () => {
  const { child: cli, io, exited } = await startAttached(['dns', '--json', '--timeout', '1000', '-d', '3'], 'ntdns');
  children.push(cli);
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

test('nettrace dns without its hook: one line and exit 1, not a silent empty run', () => {
  const r = spawnSync(process.execPath, [CLI, 'dns', '--disable', 'dns', '-d', '1'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^nettrace: nettrace dns needs the dns hook, which is off: turned off by option\n$/m);
  assert.equal(r.stdout, '');
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
