/**
 * The protobuf stream against the real kernel: a run's events encoded and decoded are what the
 * tracer delivered, `nettrace --format protobuf` to a file and to a Unix socket reads back through
 * `nettrace decode` as the connections the test made, and a broken stream stops at its first bad
 * byte with one line naming the offset, after printing everything before it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { Clock, decodeAll, encodeItems, FlowSnapshot, NettraceEvent, StreamDecoder, StreamItem, toEvent, Tracer } from '../../src';
import { CLI } from '../support/paths';
import { close, listen, runClient } from '../support/sockets';
import { waitFor } from '../support/wait';

const started: Tracer[] = [];
const children: ChildProcess[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nt-lib-pb-'));
after(async () => {
  await Promise.all(started.map((t) => t.stop()));
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  bytes: Buffer;
  stderr: string;
}

/** Runs the CLI to its end, with `input` on stdin. */
function cli(args: string[], input?: Uint8Array): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [CLI, ...args], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? null) : 0;
      if (err && typeof code !== 'number') return reject(err);
      resolve({ code, stdout: stdout.toString(), bytes: stdout, stderr: stderr.toString() });
    });
    child.stdin!.on('error', () => {}); // decode may stop reading at a bad byte
    child.stdin!.end(input ?? Buffer.alloc(0));
  });
}

const onPort = (port: number) => (c: { sport: number; dport: number }) => c.sport === port || c.dport === port;

/** Checks the events are exactly N client connections to `port` from `pid`, accepted by this process. */
function assertConnections(events: NettraceEvent[], port: number, clientPid: number, n: number): void {
  const connects = events.filter((e) => e.type === 'connect' && e.dport === port);
  assert.equal(connects.length, n);
  for (const e of connects) assert.deepEqual([e.pid, e.comm, e.type === 'connect' && e.result], [clientPid, 'nt-client', 'ok']);
  const accepts = events.filter((e) => e.type === 'accept' && e.sport === port);
  assert.equal(accepts.length, n);
  for (const e of accepts) assert.equal(e.pid, process.pid);
  const closes = events.filter((e) => e.type === 'close');
  assert.equal(closes.length, 2 * n);
}

test('a real run round-trips: events, a flow snapshot and stats decode equal to what was encoded', async () => {
  const server = await listen('127.0.0.1', 100, 300);
  const tracer = Tracer.start({ filter: onPort(server.port) });
  started.push(tracer);
  const clock = new Clock();
  const events: NettraceEvent[] = [];
  tracer.onBatch((c) => {
    while (c.next()) events.push(toEvent(c, clock));
  });
  const snapshots = tracer.snapshots({ intervalMs: 200, filter: (f) => f.sport === server.port || f.dport === server.port });
  const client = await runClient('127.0.0.1', server.port, 4, 100, 300);
  await waitFor(() => events.filter((e) => e.type === 'close').length >= 8, 5000, 'every close');
  const snap = (await snapshots.next()).value as FlowSnapshot;
  await snapshots.return(undefined);
  await tracer.stop();
  await close(server);
  assertConnections(events, server.port, client.pid, 4);
  assert.ok(snap.flows.some((f) => f.state === 'LISTEN' && f.sport === server.port && f.pid === process.pid), 'the listener is in the snapshot');

  const items: StreamItem[] = [
    { type: 'header', version: 1, producer: 'test', hostname: os.hostname(), started: Date.now(), command: 'stream' },
    ...events,
    snap,
    { type: 'stats', ts: Date.now(), ...tracer.stats() },
  ];
  const bytes = encodeItems(items);
  const whole = decodeAll(bytes);
  assert.equal(whole.error, undefined);
  assert.deepEqual(whole.items, items);

  // the same stream fed in pieces of every size from 1 byte up decodes the same
  for (const size of [1, 2, 3, 7, 64, 1000]) {
    const d = new StreamDecoder();
    const got: StreamItem[] = [];
    for (let at = 0; at < bytes.length; at += size) d.push(bytes.subarray(at, at + size), (i) => got.push(i));
    d.end();
    assert.deepEqual(got, items, `chunks of ${size}`);
  }
});

test('nettrace --format protobuf --output FILE reads back through nettrace decode as the connections made', async () => {
  const server = await listen('127.0.0.1', 10, 20);
  const file = path.join(dir, 'stream.pb');
  const child = spawn(process.execPath, [CLI, '--format', 'protobuf', '--output', file, '--stats-interval', '0.2', '--port', String(server.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  // the header is written once the programs are attached, then a Stats frame every 0.2 s
  await waitFor(() => fs.existsSync(file) && fs.statSync(file).size > 0, 15000, 'the stream header');
  await waitFor(() => decodeAll(fs.readFileSync(file)).items.some((i) => i.type === 'stats'), 15000, 'a Stats frame while running');
  const client = await runClient('127.0.0.1', server.port, 3, 10, 20);
  await waitFor(() => decodeAll(fs.readFileSync(file)).items.filter((i) => i.type === 'close').length >= 6, 10000, 'every close in the file');
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  await close(server);
  assert.equal(code, 0, stderr);
  assert.equal(child.stdout!.read(), null, 'nothing on stdout');

  const json = await cli(['decode', '--json', file]);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.stderr, '');
  const items = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as StreamItem);
  assert.equal(items[0].type, 'header');
  assert.equal(items.at(-1)!.type, 'stats');
  const events = items.filter((i): i is NettraceEvent => i.type !== 'header' && i.type !== 'stats' && i.type !== 'snapshot' && i.type !== 'steering');
  assertConnections(events, server.port, client.pid, 3);
  const stats = items.at(-1)!;
  assert.ok(stats.type === 'stats' && stats.records >= events.length && stats.drops === 0 && stats.outputDrops === 0);
  const records = items.map((i) => (i.type === 'stats' ? i.records : -1)).filter((n) => n >= 0);
  assert.ok(records.length >= 2, 'Stats while running and at the end');
  assert.deepEqual(records, [...records].sort((a, b) => a - b), 'counters only grow');

  const text = await cli(['decode', file]);
  assert.equal(text.code, 0);
  const lines = text.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^# nettrace stream v1 from nettrace \d+\.\d+\.\d+ on .*, stream, started /);
  assert.equal(lines.filter((l) => /^TIME\s+PID\s+COMM\s+EVENT/.test(l)).length, 1, 'one column header, before the first event');
  assert.ok(lines.findIndex((l) => l.startsWith('TIME')) < lines.findIndex((l) => / connect /.test(l)));
  assert.equal(lines.filter((l) => / connect .* ok /.test(l) && l.includes(`:${server.port} `)).length, 3);
  assert.match(lines.at(-1)!, /^# stats .*: \d+ records, 0 dropped by the kernel/);

  // stdin works the same as a file
  const fromStdin = await cli(['decode', '--json', '-'], fs.readFileSync(file));
  assert.equal(fromStdin.stdout, json.stdout);
});

test('--output unix:PATH streams to a Unix socket; nettrace flows --format protobuf is one snapshot', async () => {
  const server = await listen('127.0.0.1', 10, 20);
  const sockPath = path.join(dir, 'sink.sock');
  const chunks: Buffer[] = [];
  const sink = net.createServer((s) => s.on('data', (d) => chunks.push(d)));
  sink.listen(sockPath);
  await once(sink, 'listening');
  const child = spawn(process.execPath, [CLI, '-f', 'protobuf', '-o', `unix:${sockPath}`, `sport = :${server.port} or dport = :${server.port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  await waitFor(() => chunks.length > 0, 15000, 'the stream header on the socket');
  const client = await runClient('127.0.0.1', server.port, 2, 10, 20);
  await waitFor(() => decodeAll(Buffer.concat(chunks)).items.filter((i) => i.type === 'close').length >= 4, 10000, 'every close on the socket');
  child.kill('SIGTERM');
  await once(child, 'exit');

  // while a connection of the test's is open, `flows` lists it with its owner
  const peer = net.connect(server.port, '127.0.0.1');
  await once(peer, 'connect');
  const flows = await cli(['flows', '-a', '--format', 'protobuf', '--port', String(server.port)]);
  const top = await cli(['top', '-c', '2', '-i', '0.2', '--format', 'protobuf', '--port', String(server.port)]);
  peer.destroy();
  sink.close();
  await close(server);

  const streamed = decodeAll(Buffer.concat(chunks));
  assert.equal(streamed.error, undefined);
  assertConnections(
    streamed.items.filter((i): i is NettraceEvent => 'sock' in i && i.type !== 'steering'),
    server.port,
    client.pid,
    2,
  );

  assert.equal(flows.code, 0, flows.stderr);
  const decoded = decodeAll(flows.bytes);
  assert.equal(decoded.error, undefined);
  assert.deepEqual(
    decoded.items.map((i) => i.type),
    ['header', 'snapshot', 'stats'],
  );
  const snap = decoded.items[1];
  assert.ok(snap.type === 'snapshot');
  const listener = snap.flows.find((f) => f.state === 'LISTEN');
  assert.deepEqual([listener?.sport, listener?.pid], [server.port, process.pid]);
  const open = snap.flows.filter((f) => f.state === 'ESTABLISHED');
  assert.equal(open.length, 2, 'both ends of the open connection');
  for (const f of open) assert.equal(f.pid, process.pid);
  assert.ok(snap.processes.some((r) => r.pid === process.pid && r.flows === 3));

  // top without a terminal: one snapshot per interval
  assert.equal(top.code, 0, top.stderr);
  const reports = decodeAll(top.bytes);
  assert.equal(reports.error, undefined);
  assert.deepEqual(
    reports.items.map((i) => i.type),
    ['header', 'snapshot', 'snapshot', 'stats'],
  );
  for (const r of reports.items) {
    if (r.type !== 'snapshot') continue;
    assert.deepEqual(r.flows.filter((f) => f.state === 'ESTABLISHED').map((f) => f.pid), [process.pid, process.pid]);
    // every flow but the listener goes to 127.0.0.1: the open pair and the client's earlier sockets in TIME_WAIT
    assert.deepEqual(r.hosts.map((h) => [h.host, h.flows]), [['127.0.0.1', r.flows.filter((f) => f.state !== 'LISTEN').length]]);
  }
});

test('a truncated or corrupt stream: what came before is printed, then one line with the byte offset, exit 2', async () => {
  const ev: StreamItem = {
    type: 'connect',
    ts: 1700000000000.5,
    cpu: 1,
    sock: 42,
    netns: 4026531840,
    pid: 7,
    tid: 7,
    uid: 0,
    comm: 'curl',
    cgroup: 1,
    family: 6,
    saddr: '::1',
    sport: 40000,
    daddr: '::1',
    dport: 443,
    result: 'refused',
    latency_us: 80,
  };
  const header: StreamItem = { type: 'header', version: 1, producer: 'test', hostname: 'h', started: 1700000000000, command: 'stream' };
  const head = encodeItems([header, ev, { ...ev, sock: 43 }]);
  const last = encodeItems([{ ...ev, sock: 44 }]);
  const whole = Buffer.concat([head, last]);
  const before = (await cli(['decode', '--json'], head)).stdout;
  assert.equal(before.trimEnd().split('\n').length, 3);

  // cut inside the last frame
  const cut = await cli(['decode', '--json'], whole.subarray(0, whole.length - 5));
  assert.equal(cut.code, 2);
  assert.equal(cut.stdout, before);
  assert.equal(cut.stderr, `nettrace: decode: truncated stream: the frame at byte ${head.length} needs ${last.length - 1} bytes, only ${last.length - 6} follow\n`);

  // a length prefix cut off
  const prefix = await cli(['decode'], Buffer.concat([head, Buffer.from([0x80])]));
  assert.equal(prefix.code, 2);
  assert.match(prefix.stdout, /refused/);
  assert.equal(prefix.stderr, `nettrace: decode: truncated stream: the length prefix at byte ${head.length} is cut off\n`);

  // a wire type that protobuf cannot read, inside the last frame
  const bad = Buffer.from(whole);
  bad[head.length + 1] = 0x17; // field 2 with wire type 7
  const corrupt = await cli(['decode', '--json'], bad);
  assert.equal(corrupt.code, 2);
  assert.equal(corrupt.stdout, before);
  assert.match(corrupt.stderr, new RegExp(`^nettrace: decode: corrupt frame at byte ${head.length}: .+\\n$`));

  // a well-formed frame that is not a valid event: a 3-byte address
  const invalid = Buffer.concat([head, encodeItems([{ ...ev, sock: 45 }])]);
  const at = invalid.indexOf(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), head.length);
  invalid[at - 1] = 3; // the saddr field's length: 16 becomes 3, and the bytes after it become unknown fields
  const wrong = await cli(['decode'], invalid);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, new RegExp(`^nettrace: decode: (invalid|corrupt) frame at byte ${head.length}: `));
  assert.equal(wrong.stderr.split('\n').length, 2);

  // not a nettrace stream at all, an empty one, a missing file, bad usage
  const text = await cli(['decode'], Buffer.from('\x05hello'));
  assert.deepEqual([text.code, text.stdout], [2, '']);
  assert.match(text.stderr, /^nettrace: decode: corrupt frame at byte 0: [^\n]+\n$/);
  const headless = await cli(['decode'], encodeItems([ev]));
  assert.deepEqual([headless.code, headless.stdout], [2, '']);
  assert.equal(headless.stderr, 'nettrace: decode: not a nettrace stream: the first frame (at byte 0) is not a nettrace header\n');
  const empty = await cli(['decode']);
  assert.deepEqual([empty.code, empty.stderr], [2, 'nettrace: decode: not a nettrace stream: it is empty\n']);
  const missing = await cli(['decode', path.join(dir, 'nope.pb')]);
  assert.deepEqual([missing.code, missing.stderr], [2, `nettrace: cannot read ${path.join(dir, 'nope.pb')}: ENOENT\n`]);
  const twoFiles = await cli(['decode', 'a', 'b']);
  assert.deepEqual([twoFiles.code, twoFiles.stderr], [2, 'nettrace: decode reads one stream, not 2 (see nettrace --help)\n']);
  const flag = await cli(['decode', '--bogus']);
  assert.deepEqual([flag.code, flag.stderr], [2, "nettrace: Unknown option '--bogus' (see nettrace --help)\n"]);
  const format = await cli(['--format', 'xml']);
  assert.deepEqual([format.code, format.stderr], [2, "nettrace: --format takes text, json or protobuf, not 'xml' (see nettrace --help)\n"]);
  const states = await cli(['states', '--format', 'protobuf']);
  assert.equal(states.code, 2);
  assert.match(states.stderr, /^nettrace: nettrace states prints text or JSON; --format protobuf is for the stream, flows and top/);
  const unix = await cli(['-f', 'protobuf', '-o', `unix:${path.join(dir, 'nobody.sock')}`]);
  assert.deepEqual([unix.code, unix.stderr], [1, `nettrace: cannot connect to the Unix socket ${path.join(dir, 'nobody.sock')}: ENOENT\n`]);
});
