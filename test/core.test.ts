/**
 * The spine against the real kernel: connections made by a separate process
 * to a listener of this test's, over IPv4 and IPv6 loopback, must come out as
 * exactly the records the kernel produced, attributed to the right processes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { Clock, NettraceError, NettraceEvent, toEvent, TraceOptions, Tracer } from '../src';
import { close, closedPort, listen, nettracePrograms, remaining, runClient, waitFor } from './helpers';

// A tracer keeps the process alive until stopped: stop any a failed assertion left behind.
const started: Tracer[] = [];
after(() => Promise.all(started.map((t) => t.stop())));
function start(options: TraceOptions = {}): Tracer {
  const t = Tracer.start(options);
  started.push(t);
  return t;
}

const MY_COMM = fs.readFileSync('/proc/self/comm', 'utf8').trim();

function collect(tracer: Tracer): NettraceEvent[] {
  const clock = new Clock();
  const events: NettraceEvent[] = [];
  tracer.onBatch((c) => {
    while (c.next()) events.push(toEvent(c, clock));
  });
  return events;
}

const onPort = (port: number) => (c: { sport: number; dport: number }) => c.sport === port || c.dport === port;

function transitions(events: NettraceEvent[], sock: number): string[] {
  return events.filter((e) => e.type === 'state' && e.sock === sock).map((e) => (e.type === 'state' ? `${e.old}>${e.new}` : ''));
}

for (const [family, host] of [
  [4, '127.0.0.1'],
  [6, '::1'],
] as const) {
  test(`connections from another process over ${host}: exact records, owners and state sequences`, async () => {
    const N = 25;
    const SEND = 1500;
    const REPLY = 70000;
    const server = await listen(host, SEND, REPLY);
    const tracer = start({ filter: onPort(server.port) });
    const events = collect(tracer);
    const client = await runClient(host, server.port, N, SEND, REPLY);
    await waitFor(() => events.filter((e) => e.type === 'close').length >= 2 * N, 5000, 'every close');
    await tracer.stop();
    await close(server);

    const clientPorts = new Set(client.ports);
    const connects = events.filter((e) => e.type === 'connect');
    assert.equal(connects.length, N);
    for (const e of connects) {
      assert.equal(e.type === 'connect' && e.result, 'ok');
      assert.equal(e.pid, client.pid);
      assert.equal(e.comm, 'nt-client');
      assert.equal(e.family, family);
      assert.equal(e.daddr, host);
      assert.equal(e.dport, server.port);
      assert.ok(clientPorts.has(e.sport), `connect from port ${e.sport} the client did not use`);
      assert.ok(e.type === 'connect' && e.latency_us > 0);
    }
    assert.equal(new Set(connects.map((e) => e.sport)).size, N);

    const accepts = events.filter((e) => e.type === 'accept');
    assert.equal(accepts.length, N);
    for (const e of accepts) {
      assert.equal(e.pid, process.pid);
      assert.equal(e.comm, MY_COMM);
      assert.equal(e.saddr, host);
      assert.equal(e.sport, server.port);
      assert.ok(clientPorts.has(e.dport));
    }

    const active = new Set(connects.map((e) => e.sock));
    const passive = new Set(accepts.map((e) => e.sock));
    for (const sock of active) {
      assert.deepEqual(transitions(events, sock), [
        'CLOSE>SYN_SENT',
        'SYN_SENT>ESTABLISHED',
        'ESTABLISHED>FIN_WAIT1',
        'FIN_WAIT1>FIN_WAIT2',
        'FIN_WAIT2>CLOSE',
      ]);
      for (const e of events.filter((e) => e.sock === sock)) assert.equal(e.pid, client.pid, `${e.type} of a client socket`);
    }
    for (const sock of passive) {
      assert.deepEqual(transitions(events, sock), [
        'LISTEN>SYN_RECV',
        'SYN_RECV>ESTABLISHED',
        'ESTABLISHED>CLOSE_WAIT',
        'CLOSE_WAIT>LAST_ACK',
        'LAST_ACK>CLOSE',
      ]);
      // softirq runs the handshake: no owner until accept() names one, then every record has it
      const own = events.filter((e) => e.sock === sock).map((e) => e.pid);
      assert.deepEqual(own, [null, null, process.pid, process.pid, process.pid, process.pid, process.pid]);
    }

    const closes = events.filter((e) => e.type === 'close');
    assert.equal(closes.length, 2 * N);
    for (const e of closes) {
      assert.ok(e.type === 'close');
      if (active.has(e.sock)) {
        assert.deepEqual([e.pid, e.tx_bytes, e.rx_bytes, e.old], [client.pid, SEND, REPLY, 'FIN_WAIT2']);
        assert.ok(clientPorts.has(e.sport), 'close keeps the local port the kernel already released');
      } else {
        assert.ok(passive.has(e.sock));
        assert.deepEqual([e.pid, e.tx_bytes, e.rx_bytes, e.old], [process.pid, REPLY, SEND, 'LAST_ACK']);
      }
      assert.ok(e.duration_us !== null && e.duration_us > 0);
      assert.ok(e.srtt_us > 0);
      assert.equal(e.retrans, 0);
    }
    assert.equal(events.length, N * 14, 'per connection: 10 transitions, connect, accept, 2 closes');
    assert.equal(tracer.stats().drops, 0);
  });

  test(`a connect to a closed port over ${host} is refused`, async () => {
    const port = await closedPort(host);
    const tracer = start({ filter: onPort(port) });
    const events = collect(tracer);
    const s = net.connect({ host, port });
    const [err] = await once(s, 'error');
    assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    await waitFor(() => events.some((e) => e.type === 'connect'), 2000, 'the connect record');
    await tracer.stop();
    const connects = events.filter((e) => e.type === 'connect');
    assert.equal(connects.length, 1);
    const c = connects[0];
    assert.ok(c.type === 'connect');
    assert.deepEqual([c.result, c.pid, c.comm, c.family, c.daddr, c.dport], ['refused', process.pid, MY_COMM, family, host, port]);
    assert.deepEqual(transitions(events, c.sock), ['CLOSE>SYN_SENT', 'SYN_SENT>CLOSE']);
    const closes = events.filter((e) => e.type === 'close');
    assert.equal(closes.length, 1);
    assert.ok(closes[0].type === 'close' && closes[0].tx_bytes === 0 && closes[0].rx_bytes === 0);
  });
}

test('a moderate rate delivers every record with no drops', async () => {
  const N = 400;
  const server = await listen('127.0.0.1', 10, 10);
  const tracer = start({ filter: onPort(server.port) });
  let records = 0;
  tracer.onBatch((c) => {
    while (c.next()) records++;
  });
  await runClient('127.0.0.1', server.port, N, 10, 10);
  await waitFor(() => records >= 14 * N, 5000, 'every record');
  await tracer.stop();
  await close(server);
  assert.equal(records, 14 * N);
  const s = tracer.stats();
  assert.equal(s.drops, 0);
  assert.ok(s.records >= records && s.batches >= 1 && s.bytes >= records * 112);
});

test('stop() detaches every program and link, and is safe to call twice', async () => {
  const tracer = start();
  const ids = tracer.kernelIds;
  assert.ok(ids.programs.length >= 2 && ids.links.length === ids.programs.length, 'state and accept hooks');
  assert.deepEqual(remaining(ids), ids, 'the kernel lists every program and link');
  const first = tracer.stop();
  assert.equal(tracer.stop(), first);
  await first;
  await tracer.stop();
  assert.deepEqual(remaining(ids), { programs: [], links: [] });
});

test('the async iterator yields typed events and ends after stop()', async () => {
  const server = await listen('127.0.0.1', 5, 5);
  const tracer = start({ filter: onPort(server.port) });
  const seen: string[] = [];
  const consumer = (async () => {
    for await (const ev of tracer) seen.push(ev.type);
  })();
  await runClient('127.0.0.1', server.port, 1, 5, 5);
  await waitFor(() => seen.filter((t) => t === 'close').length === 2, 3000, 'both closes');
  await tracer.stop();
  await consumer;
  await close(server);
  assert.deepEqual(
    seen.filter((t) => t !== 'state'),
    ['connect', 'accept', 'close', 'close'],
  );
  assert.equal(seen.length, 14);
});

test('a disabled hook is reported and the rest still traces', async () => {
  const server = await listen('127.0.0.1', 5, 5);
  const tracer = start({ disable: ['accept'], filter: onPort(server.port) });
  assert.deepEqual(
    tracer.hooks.map((h) => [h.name, h.status]),
    [
      ['state', 'attached'],
      ['accept', 'disabled'],
      ['udp', 'attached'],
    ],
  );
  const events = collect(tracer);
  await runClient('127.0.0.1', server.port, 2, 5, 5);
  await waitFor(() => events.filter((e) => e.type === 'close').length === 4, 3000, 'four closes');
  await tracer.stop();
  await close(server);
  assert.equal(events.filter((e) => e.type === 'accept').length, 0);
  assert.equal(events.filter((e) => e.type === 'connect').length, 2);
});

test('bad options are refused with one sentence and a code', () => {
  const cases: [object, RegExp][] = [
    [{ ringBytes: 1000 }, /ring buffer size 1000 is not a power of two/],
    [{ flushMs: 0 }, /flush interval 0 ms is outside 1\.\.50 ms/],
    [{ flushMs: 51 }, /outside 1\.\.50/],
    [{ disable: ['bogus'] }, /unknown hook 'bogus'/],
    [{ maxSockets: 0 }, /at least one socket/],
  ];
  for (const [opts, message] of cases) {
    assert.throws(
      () => Tracer.start(opts),
      (e: unknown) => e instanceof NettraceError && e.code === 'EINVAL' && message.test(e.message) && !e.message.includes('\n'),
    );
  }
  const before = new Set(nettracePrograms());
  assert.throws(() => Tracer.start({ ringBytes: 3 << 20 }));
  assert.deepEqual(nettracePrograms().filter((id) => !before.has(id)), [], 'a refused start leaves nothing loaded');
});

test('a kernel filter keeps other sockets out of the ring entirely', async () => {
  const wanted = await listen('127.0.0.1', 5, 5);
  const other = await listen('127.0.0.1', 5, 5);
  const tracer = start({ kernelFilter: { ports: [wanted.port], family: 4 } });
  let records = 0;
  tracer.onBatch((c) => {
    while (c.next()) {
      assert.ok(c.sport === wanted.port || c.dport === wanted.port, `a record for port ${c.sport}>${c.dport} came through`);
      records++;
    }
  });
  await Promise.all([runClient('127.0.0.1', wanted.port, 20, 5, 5), runClient('127.0.0.1', other.port, 50, 5, 5)]);
  await waitFor(() => records >= 20 * 14, 5000, "the wanted port's records");
  await tracer.stop();
  await Promise.all([close(wanted), close(other)]);
  assert.equal(records, 20 * 14);
  assert.equal(tracer.stats().records, 20 * 14, 'the ring carried nothing else, though the machine churned more');
});

test('a kernel pid filter passes only records with that owner', async () => {
  const server = await listen('127.0.0.1', 5, 5);
  const tracer = start({ kernelFilter: { pids: [process.pid] } });
  const events = collect(tracer);
  await runClient('127.0.0.1', server.port, 5, 5, 5);
  await waitFor(() => events.filter((e) => e.type === 'close').length >= 5, 5000, 'the server side closes');
  await tracer.stop();
  await close(server);
  // the accepted side is this process's once accept() returns: accept, 3 transitions, close per connection
  const mine = events.filter((e) => e.dport !== 0 && e.sport === server.port);
  assert.equal(mine.length, 5 * 5);
  assert.ok(events.every((e) => e.pid === process.pid));
});

test('the kernel-side socket table stays at its cap and counts what it evicts', async () => {
  const N = 100;
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const tracer = start({ maxSockets: 64, filter: onPort(port) });
  const held: net.Socket[] = [];
  for (let i = 0; i < N; i++) {
    const c = net.connect(port, '127.0.0.1');
    await once(c, 'connect');
    held.push(c);
  }
  await waitFor(() => accepted.length === N, 3000, 'every accept');
  await tracer.stop();
  // 2N sockets entered a table of 64 while all stayed open
  const { evictions } = tracer.stats();
  assert.ok(evictions >= 2 * N - 64 && evictions <= 2 * N, `evictions ${evictions}`);
  for (const s of [...held, ...accepted]) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

test('nothing is evicted below the cap', async () => {
  const server = await listen('127.0.0.1', 5, 5);
  const tracer = start({ filter: onPort(server.port) });
  await runClient('127.0.0.1', server.port, 50, 5, 5);
  await tracer.stop();
  await close(server);
  assert.equal(tracer.stats().evictions, 0);
});

test('a burst larger than the ring: every record is delivered or counted, and tracing recovers', async () => {
  const server = net.createServer((s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const tracer = start({ ringBytes: 4096, flushMs: 50, kernelFilter: { ports: [port] } });
  let delivered = 0;
  tracer.onBatch((c) => {
    while (c.next()) delivered++;
  });
  const connect = () =>
    new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('data', () => {});
      c.on('end', () => c.end());
      c.on('close', () => resolve());
    });
  server.unref();
  await Promise.all(Array.from({ length: 200 }, connect));
  await new Promise((r) => setTimeout(r, 200));
  const burst = tracer.stats();
  assert.ok(burst.drops > 0, 'the burst overflowed the ring');
  // 14 records a connection: each one reached us, or the kernel counted it
  assert.equal(delivered + burst.drops + burst.missed, 200 * 14);

  // one connection's 14 records (1.9 KB) fit the 4 KB ring: spaced past the flush, none should drop
  const before = delivered;
  for (let i = 0; i < 5; i++) {
    await connect();
    await new Promise((r) => setTimeout(r, 120));
  }
  await waitFor(() => delivered - before >= 5 * 14, 3000, 'records after the burst')
    .catch((e) => assert.fail(`${e.message}: ${delivered - before} arrived, stats ${JSON.stringify(tracer.stats())} burst ${JSON.stringify(burst)}`))
    .finally(() => server.close());
  await tracer.stop();
  assert.equal(delivered - before, 5 * 14);
  assert.equal(tracer.stats().drops, burst.drops, 'no drops once the burst is over');
});
