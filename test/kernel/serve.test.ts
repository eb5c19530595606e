/** `nettrace serve`: exact metrics of real connections, a hardened endpoint, clean stops. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { heldBpf, stillThere } from '../support/bpf-objects';
import { Sample, valueOf } from '../support/exposition';
import { CLI, FIXTURES } from '../support/paths';
import { Exchange, expectedCounts, peerClient, peerServer } from '../support/peer';
import { get, scrape, startServe } from '../support/serve';
import { closedPort } from '../support/sockets';

const run = promisify(execFile);
const children: ChildProcess[] = [];
after(() => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));

async function usageError(args: string[]): Promise<string> {
  try {
    await run(process.execPath, [CLI, 'serve', ...args]);
  } catch (e) {
    const err = e as { code: number; stderr: string };
    assert.equal(err.code, 2, args.join(' '));
    assert.equal(err.stderr.split('\n').length, 2, `one line: ${err.stderr}`);
    return err.stderr;
  }
  throw new Error(`nettrace serve ${args.join(' ')} succeeded`);
}

test('serve: bad usage is one line and exit 2', async () => {
  assert.match(await usageError(['--listen', 'example.com:80']), /--listen takes HOST:PORT with an IP address/);
  assert.match(await usageError(['--listen', '127.0.0.1:70000']), /--listen takes HOST:PORT/);
  assert.match(await usageError(['--listen', '[::1]']), /--listen takes HOST:PORT/);
  assert.match(await usageError(['--otlp', 'ftp://x']), /--otlp takes an http:\/\/ or https:\/\/ URL/);
  assert.match(await usageError(['--otlp-logs']), /--otlp-logs needs --otlp/);
  assert.match(await usageError(['--count', '3']), /serve runs until stopped/);
  assert.match(await usageError(['--top', '0']), /--top must be a whole number from 1 to 1000/);
  const help = await run(process.execPath, [CLI, 'serve', '--help']);
  assert.match(help.stdout, /^Usage: nettrace serve \[--listen HOST:PORT\]/);
  assert.match(help.stdout, /default 127\.0\.0\.1:9559/);
});

/** Scrapes until every expectation holds (the flow table refreshes every second), then returns the last scrape. */
async function scrapeUntil(port: number, checks: [string, Record<string, string>, number][]): Promise<Sample[]> {
  let samples: Sample[] = [];
  const pending = (): string[] =>
    checks.filter(([n, l, v]) => valueOf(samples, n, l) !== v).map(([n, l, v]) => `${n}${JSON.stringify(l)}=${valueOf(samples, n, l)} (want ${v})`);
  const end = Date.now() + 30000;
  for (;;) {
    samples = await scrape(port);
    if (pending().length === 0) return samples;
    if (Date.now() > end) throw new Error(`metrics never reached: ${pending().join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function withComm(checks: [string, Record<string, string>, number][], comm: string): [string, Record<string, string>, number][] {
  return checks.map(([n, l, v]) => [n, { ...l, comm }, v]);
}

test('serve: /metrics counts opens, accepts, closes, refusals, resets and bytes of real connections exactly; SIGTERM cleans up', async () => {
  const x: Exchange = { ok: 5, resets: 3, refused: 4, send: 1000, reply: 3000 };
  const peer = await peerServer('127.0.0.1', x, children);
  const refusedPort = await closedPort('127.0.0.1');
  const filter = `sport = :${peer.port} or dport = :${peer.port} or dport = :${refusedPort}`;
  const served = await startServe(['--listen', '127.0.0.1:0', filter], process.env, children);
  const progs = heldBpf(served.child.pid!).programs;
  assert.ok(progs.length >= 2, 'programs attached');

  const health = await get(served.port, '/healthz');
  assert.deepEqual([health.status, health.body], [200, 'ok\n']);
  await peerClient('127.0.0.1', peer.port, refusedPort, x);
  const want = expectedCounts(x);
  const samples = await scrapeUntil(served.port, [
    ...withComm(want.client, 'nt-mclient'),
    ...withComm(want.server, 'nt-mserver'),
    ['nettrace_remote_bytes_total', { host: '127.0.0.1', direction: 'tx' }, (x.ok + x.resets) * (x.send + x.reply)],
    ['nettrace_remote_bytes_total', { host: '127.0.0.1', direction: 'rx' }, (x.ok + x.resets) * (x.send + x.reply)],
    // both ends of every connection that carried data close with an RTT; refused ones have none
    ['nettrace_tcp_rtt_seconds_count', {}, 2 * (x.ok + x.resets)],
    ['nettrace_tcp_connect_duration_seconds_count', {}, x.ok + x.resets + x.refused],
    ['nettrace_tcp_sockets', { state: 'LISTEN' }, 1],
    // loopback flows leave through lo with no gateway, as ip route get says
    ['nettrace_interface_bytes_total', { ifname: 'lo', direction: 'tx' }, (x.ok + x.resets) * (x.send + x.reply)],
    ['nettrace_interface_bytes_total', { ifname: 'lo', direction: 'rx' }, (x.ok + x.resets) * (x.send + x.reply)],
    ['nettrace_gateway_bytes_total', { gateway: 'direct', direction: 'tx' }, (x.ok + x.resets) * (x.send + x.reply)],
  ]);
  // nothing else passed the filter
  const comms = new Set(samples.filter((s) => s.labels.comm !== undefined).map((s) => s.labels.comm));
  assert.deepEqual([...comms].sort(), ['nt-mclient', 'nt-mserver']);
  assert.equal(valueOf(samples, 'nettrace_tcp_rtt_seconds_bucket', { le: '+Inf' }), 2 * (x.ok + x.resets));
  assert.ok(valueOf(samples, 'nettrace_tcp_rtt_seconds_sum') > 0);
  assert.equal(valueOf(samples, 'nettrace_dropped_records_total'), 0);
  assert.ok(valueOf(samples, 'nettrace_records_total') > 0);
  for (const name of ['nettrace_missed_hook_runs_total', 'nettrace_evictions_total', 'nettrace_tcp_retransmits_total']) {
    assert.ok(samples.some((s) => s.name === name) || name === 'nettrace_tcp_retransmits_total', `${name} is exposed`);
  }

  const head = await get(served.port, '/metrics', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');

  served.child.kill('SIGTERM');
  const r = await served.done;
  peer.child.kill('SIGTERM');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /nettrace: \d+ events, 0 dropped\n$/);
  assert.deepEqual(stillThere({ programs: progs, links: [] }).programs, [], 'no program is left after SIGTERM');
});

/** Starts test/kernel/fixtures/udp-peer.js (comm nt-udp) and resolves with its {pid, port} once its socket is ready. */
async function udpPeer(args: string[]): Promise<{ child: ChildProcess; pid: number; port: number }> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'udp-peer.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, ...(JSON.parse(line.toString()) as { pid: number; port: number }) };
}

test('serve: UDP datagrams and bytes per process exactly, and the open UDP sockets by kind', async () => {
  const served = await startServe(['--listen', '127.0.0.1:0', 'udp and comm nt-udp'], process.env, children);
  const receiver = await udpPeer(['hold', '127.0.0.1']);
  const sender = await udpPeer(['send', '127.0.0.1', String(receiver.port), '100,200,300,400']);
  await once(sender.child, 'exit');
  const samples = await scrapeUntil(served.port, [
    ['nettrace_udp_datagrams_total', { comm: 'nt-udp', direction: 'tx' }, 4],
    ['nettrace_process_bytes_total', { comm: 'nt-udp', direction: 'tx' }, 1000],
  ]);
  // at least the receiver, which is still open (the table keeps a closed socket visible a few seconds)
  assert.ok(valueOf(samples, 'nettrace_udp_sockets', { kind: 'unconnected' }) >= 1);
  receiver.child.kill('SIGTERM');
  served.child.kill('SIGTERM');
  assert.equal((await served.done).code, 0);
});

test('serve --steering: segments the reader\'s CPU was known for, those on it, and the locality gauge', async () => {
  const port = await closedPort('127.0.0.1');
  const served = await startServe(['--listen', '127.0.0.1:0', '--steering', `sport = :${port} or dport = :${port}`], process.env, children);
  const bulk = (args: string[]): ChildProcess => {
    const c = spawn(process.execPath, [path.join(FIXTURES, 'bulk.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(c);
    return c;
  };
  const sink = bulk(['sink', '127.0.0.1', String(port)]);
  await once(sink.stdout!, 'data');
  const source = bulk(['source', '127.0.0.1', String(port), String(32 << 20)]);
  await once(source, 'exit');
  let samples: Sample[] = [];
  const end = Date.now() + 30000;
  while (valueOf(samples, 'nettrace_steering_segments_total', { comm: 'nt-sink', where: 'any' }) === 0) {
    if (Date.now() > end) throw new Error('no steering segments were counted for the sink');
    await new Promise((r) => setTimeout(r, 200));
    samples = await scrape(served.port);
  }
  const any = valueOf(samples, 'nettrace_steering_segments_total', { comm: 'nt-sink', where: 'any' });
  const local = valueOf(samples, 'nettrace_steering_segments_total', { comm: 'nt-sink', where: 'reader_cpu' });
  // 32 MiB over loopback is at least 32 MiB / 64 KiB segments (GSO), most of them read after the first read
  assert.ok(any >= 256, `segments ${any}`);
  assert.ok(local <= any, `${local} of ${any}`);
  const locality = samples.find((x) => x.name === 'nettrace_steering_locality_ratio');
  assert.ok(locality && locality.value >= 0 && locality.value <= 1, `locality ${locality?.value}`);
  served.child.kill('SIGTERM');
  assert.equal((await served.done).code, 0);
});

test('serve: --top bounds the comm label, the rest counting as other', async () => {
  const x: Exchange = { ok: 3, resets: 0, refused: 0, send: 10, reply: 20 };
  const peer = await peerServer('127.0.0.1', x, children);
  const served = await startServe(['--listen', '127.0.0.1:0', '--top', '1', `sport = :${peer.port} or dport = :${peer.port}`], process.env, children);
  await peerClient('127.0.0.1', peer.port, 1, x);
  const samples = await scrapeUntil(served.port, [
    ['nettrace_tcp_connects_total', {}, 3],
    ['nettrace_tcp_accepts_total', {}, 3],
  ]);
  const comms = new Set(samples.filter((s) => s.labels.comm !== undefined).map((s) => s.labels.comm));
  assert.equal(comms.size, 2, [...comms].join(','));
  assert.ok(comms.has('other'));
  served.child.kill('SIGTERM');
  peer.child.kill('SIGTERM');
  assert.equal((await served.done).code, 0);
});

test('serve: a process name with quotes, backslashes and a line feed is escaped in label values', async () => {
  const x: Exchange = { ok: 2, resets: 0, refused: 0, send: 5, reply: 5 };
  const title = 'nt"q\\m\nx';
  const peer = await peerServer('127.0.0.1', x, children);
  const served = await startServe(['--listen', '127.0.0.1:0', `dport = :${peer.port}`], process.env, children);
  await peerClient('127.0.0.1', peer.port, 1, x, title);
  const samples = await scrapeUntil(served.port, [['nettrace_tcp_connects_total', { comm: title, result: 'ok' }, 2]]);
  assert.ok(samples.length > 0);
  const text = (await get(served.port, '/metrics')).body;
  assert.ok(text.includes('nettrace_tcp_connects_total{comm="nt\\"q\\\\m\\nx",result="ok"} 2\n'), 'escaped as the format wants');
  served.child.kill('SIGTERM');
  peer.child.kill('SIGTERM');
  assert.equal((await served.done).code, 0);
});

test('serve: bytes a connection moved before nettrace started are not counted, what it moves after is', async () => {
  const old = spawn(process.execPath, [path.join(FIXTURES, 'old-pair.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(old);
  const [line] = (await once(old.stdout!, 'data')) as [Buffer];
  const { port } = JSON.parse(line.toString()) as { port: number };
  const served = await startServe(['--listen', '127.0.0.1:0', `sport = :${port} or dport = :${port}`], process.env, children);
  // the first snapshot is the baseline; wait for it to have been taken before sending more
  await scrapeUntil(served.port, [['nettrace_tcp_sockets', { state: 'ESTABLISHED' }, 2]]);
  old.stdin!.write('more\n');
  const samples = await scrapeUntil(served.port, [
    ['nettrace_process_bytes_total', { comm: 'nt-mold', direction: 'tx' }, 200],
    ['nettrace_process_bytes_total', { comm: 'nt-mold', direction: 'rx' }, 200],
  ]);
  assert.equal(valueOf(samples, 'nettrace_remote_bytes_total', { host: '127.0.0.1' }), 400);
  old.kill('SIGTERM');
  served.child.kill('SIGTERM');
  assert.equal((await served.done).code, 0);
});

/** Sends raw bytes; resolves with what came back when the server closed (or after `waitMs` if it did not). */
function raw(port: number, data: string | Buffer, waitMs = 15000): Promise<{ reply: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let reply = '';
    s.on('data', (d) => (reply += d.toString('latin1')));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ reply, closedByServer: false });
    }, waitMs);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, closedByServer: true });
    });
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

const statusOf = (reply: string): number => Number(/^HTTP\/1\.[01] (\d{3})/.exec(reply)?.[1] ?? 0);

test('serve: the endpoint answers GET and HEAD of known paths only and refuses malformed requests without harm', async () => {
  const served = await startServe(['--listen', '127.0.0.1:0', 'dport = :1'], process.env, children);
  const p = served.port;
  const request = (head: string): Promise<{ reply: string; closedByServer: boolean }> => raw(p, head);

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
    const r = await request(`${method} /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(r.reply), 405, method);
    assert.match(r.reply, /\r\nAllow: GET, HEAD\r\n/);
  }
  for (const target of ['/', '/metricsx', '/metrics/../etc/passwd', '//metrics', 'http://evil.example/metrics', '*']) {
    const r = await request(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.ok([400, 404].includes(statusOf(r.reply)), `${target}: ${r.reply.split('\r\n')[0]}`);
  }
  const cases: [string, string | Buffer, number][] = [
    ['garbage bytes', Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a]), 400],
    ['no HTTP version (0.9)', 'GET /metrics\r\n\r\n', 505],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
    ['a header without a colon', 'GET /metrics HTTP/1.1\r\nHost x\r\n\r\n', 400],
    ['a 16 KiB header', `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16384)}\r\n\r\n`, 431],
    ['a 2 KiB URL', `GET /metrics?${'q'.repeat(2048)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    ['a body', 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', 413],
    ['a chunked body', 'GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 413],
    ['CONNECT', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', 0],
  ];
  for (const [what, data, status] of cases) {
    const r = await request(data as string);
    assert.equal(statusOf(r.reply), status, `${what}: ${r.reply.slice(0, 60)}`);
    assert.ok(r.closedByServer, `${what}: the server closed the connection`);
    assert.doesNotMatch(r.reply, /nettrace_/, `${what}: no metrics given out`);
  }

  // slowloris: a request that never ends is cut off, and does not keep others from being served
  const slow = raw(p, 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ', 30000);
  const meanwhile = await get(p, '/healthz');
  assert.equal(meanwhile.status, 200);
  const s = await slow;
  assert.ok(s.closedByServer, 'a partial request is closed by the server');
  assert.ok([0, 408].includes(statusOf(s.reply)), s.reply);

  // an idle connection that never sends a byte is closed too
  const idle = await raw(p, '', 30000);
  assert.ok(idle.closedByServer, 'an idle connection is closed by the server');

  // still healthy, and still the same process
  assert.equal((await get(p, '/healthz')).status, 200);
  assert.equal((await get(p, '/metrics')).status, 200);
  assert.equal(served.child.exitCode, null);
  served.child.kill('SIGINT');
  assert.equal((await served.done).code, 0);
});

test('serve: listens on loopback by default and stops cleanly on SIGINT, SIGTERM and SIGHUP', async () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const served = await startServe(signal === 'SIGINT' ? [] : ['--listen', '127.0.0.1:0'], process.env, children);
    if (signal === 'SIGINT') {
      assert.equal(served.port, 9559);
      assert.match(served.stderr(), /serving http:\/\/127\.0\.0\.1:9559\/metrics/);
    }
    const mine = heldBpf(served.child.pid!).programs;
    assert.ok(mine.length >= 2, 'programs attached');
    served.child.kill(signal);
    const r = await served.done;
    assert.equal(r.code, 0, `${signal}: ${r.stderr}`);
    assert.deepEqual(stillThere({ programs: mine, links: [] }).programs, [], `no program is left after ${signal}`);
    await assert.rejects(get(served.port, '/healthz'), /ECONNREFUSED/);
  }
});

test('serve: a port in use is a runtime failure with one line, exit 1', async () => {
  const holder = net.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const port = (holder.address() as net.AddressInfo).port;
  try {
    await run(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`]);
    assert.fail('serve succeeded on a port in use');
  } catch (e) {
    const err = e as { code: number; stderr: string };
    assert.equal(err.code, 1);
    assert.match(err.stderr, new RegExp(`^nettrace: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    assert.equal(err.stderr.trim().split('\n').length, 1, err.stderr);
  } finally {
    holder.close();
  }
});
