/**
 * Paying only for what is asked, against the real kernel: record kinds not
 * selected never reach the ring (the ring's own producer position says so),
 * transitions counted in the kernel equal the records of the same
 * transitions, and serve counts the same on its lean path as on every record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { Tracer, TraceOptions } from '../src';
import { NettraceMetrics } from '../src/metrics/registry';
import { MetricFamily } from '../src/metrics/model';
import { Close, Kind } from '../src/layout';
import { CLI, captured, close, closedPort, listen, runClient, waitFor } from './helpers';
import { isRepeat } from './expect';
import { NettraceEvent } from '../src/events';

const children: ChildProcess[] = [];
test.after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Whether the process holds BPF links: its programs are attached. */
function attached(pid: number): boolean {
  try {
    return fs.readdirSync(`/proc/${pid}/fdinfo`).some((fd) => {
      try {
        return /^link_id:/m.test(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** A ring record takes its 8-byte header plus its size, rounded up to 8. */
const RING_BYTES_OF_CLOSE = 8 + Math.ceil(Close.SIZE / 8) * 8;

test('with events close, exactly one close per socket reaches the ring and nothing else does', async () => {
  const server = await listen('127.0.0.1', 5, 7);
  const tracer = Tracer.start({ events: ['close'], kernelFilter: { ports: [server.port] } });
  try {
    const kinds = new Map<number, number>();
    const socks = new Set<number>();
    tracer.onBatch((c) => {
      while (c.next()) {
        kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
        socks.add(c.cookie);
      }
    });
    const client = await runClient('127.0.0.1', server.port, 20, 5, 7);
    await waitFor(() => (kinds.get(Kind.Close) ?? 0) >= 40, 5000, 'a close for each of the 40 sockets');
    await new Promise((r) => setTimeout(r, 300)); // anything more would arrive by now
    assert.deepEqual([...kinds], [[Kind.Close, 40]], 'close records only');
    assert.equal(socks.size, 40, 'one per socket');
    const s = tracer.stats();
    // the kernel's producer position: what the programs put in the ring, records of every kind included
    assert.equal(s.ringProduced, 40 * RING_BYTES_OF_CLOSE);
    assert.equal(s.drops, 0);
    assert.equal(client.ports.length, 20);
    // nothing needed per transition: no accept hook is left out (owners come from it), no state record exists
    assert.equal(tracer.hooks.find((h) => h.name === 'state')?.status, 'attached');
  } finally {
    await tracer.stop();
    await close(server);
  }
});

test('states runs without a record: no state record is made, and the accept and udp hooks are not attached', async () => {
  const tracer = Tracer.start({ events: [], trackSockets: false, countStates: true });
  try {
    const server = await listen('127.0.0.1', 1, 1);
    await runClient('127.0.0.1', server.port, 5, 1, 1);
    await close(server);
    await new Promise((r) => setTimeout(r, 200));
    const counts = tracer.stateCounts();
    assert.ok(counts[2 * 16 + 1] >= 5, 'SYN_SENT>ESTABLISHED counted in the kernel');
    assert.equal(tracer.stats().ringProduced, 0, 'the ring never took a byte');
    const status = Object.fromEntries(tracer.hooks.map((h) => [h.name, h.status]));
    assert.equal(status.accept, 'unneeded');
    assert.equal(status.udp, 'unneeded');
  } finally {
    await tracer.stop();
  }
});

test('bad event selections are refused with one sentence', () => {
  assert.throws(() => Tracer.start({ events: ['bogus' as never] }), /unknown event kind 'bogus'/);
  assert.throws(() => Tracer.start({ events: ['close'], trackSockets: false }), /need the socket table/);
  assert.throws(() => Tracer.start({ countStates: true, kernelFilter: { pids: [1] } }), /a pid or cgroup condition cannot apply/);
});

test('--events: a comma list of kinds, anything else a usage error', async () => {
  const child = spawn(process.execPath, [CLI, '--events', 'close,nope']);
  const out = captured(child);
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(out.err(), /^nettrace: --events takes a comma list of connect, accept, state, close, udp, dns, not 'nope' \(see nettrace --help\)\n$/);
});

test('states counts in the kernel exactly the transitions a second instance streams as records', async () => {
  const server = await listen('127.0.0.1', 5, 7);
  const port = String(server.port);
  const states = spawn(process.execPath, [CLI, 'states', '--json', '-i', '0.3', '--port', port], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stream = spawn(process.execPath, [CLI, '--json', '--events', 'state', '--port', port], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(states, stream);
  const s = captured(states);
  const r = captured(stream);
  const counted = (): Map<string, number> => {
    const total = new Map<string, number>();
    for (const line of s.out().split('\n').filter(Boolean)) {
      for (const [k, n] of Object.entries(JSON.parse(line).counts as Record<string, number>)) total.set(k, (total.get(k) ?? 0) + n);
    }
    return total;
  };
  const streamed = (): Map<string, number> => {
    const total = new Map<string, number>();
    for (const line of r.out().split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as NettraceEvent;
      if (e.type !== 'state') continue;
      const k = `${e.old}>${e.new}`;
      total.set(k, (total.get(k) ?? 0) + 1);
    }
    return total;
  };
  try {
    await waitFor(() => s.out().includes('\n'), 15000, 'the first states report');
    await waitFor(() => attached(stream.pid!), 15000, 'the stream to attach');
    await runClient('127.0.0.1', server.port, 25, 5, 7);
    // every socket of those connections has reached CLOSE in both
    await waitFor(() => (streamed().get('LAST_ACK>CLOSE') ?? 0) + (streamed().get('FIN_WAIT2>CLOSE') ?? 0) >= 25, 10000, 'the streamed closes');
    const sorted = (m: Map<string, number>) => [...m].filter(([k]) => !isRepeat({ type: 'state', old: k.split('>')[0], new: k.split('>')[1] } as NettraceEvent)).sort();
    await waitFor(() => JSON.stringify(sorted(counted())) === JSON.stringify(sorted(streamed())), 10000, 'the counted transitions to equal the streamed ones');
    assert.deepEqual(sorted(counted()), sorted(streamed()));
    assert.equal(counted().get('SYN_SENT>ESTABLISHED'), 25);
    assert.equal(counted().get('LISTEN>SYN_RECV'), 25);
  } finally {
    states.kill('SIGINT');
    stream.kill('SIGINT');
    await Promise.all([once(states, 'exit'), once(stream, 'exit')]);
    await close(server);
  }
});

/** Every counter and histogram count of a metrics source, as `name{labels}` → value. */
function values(families: MetricFamily[], only: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of families) {
    if (!only.test(f.name)) continue;
    for (const s of f.series) {
      const key = `${f.name}${JSON.stringify(s.labels)}`;
      out.set(key, 'count' in s ? s.count : s.value);
    }
  }
  return out;
}

test('serve counts the same from connect, accept and close records as from every record', async () => {
  const server = await listen('127.0.0.1', 300, 5000);
  const refused = await closedPort('127.0.0.1');
  const filter: TraceOptions = { kernelFilter: { ports: [server.port, refused] } };
  const every = Tracer.start(filter);
  const lean = Tracer.start({ ...filter, events: ['connect', 'accept', 'close', 'udp'] });
  const match = (f: { sport: number; dport: number }) => f.sport === server.port || f.dport === server.port;
  const metrics = [new NettraceMetrics(every, { match }), new NettraceMetrics(lean, { match })];
  try {
    await runClient('127.0.0.1', server.port, 30, 300, 5000);
    await runClient('127.0.0.1', refused, 3, 0, 0).catch(() => undefined); // refused connects
    await new Promise((r) => setTimeout(r, 500));
    for (const m of metrics) m.tcp.refresh();
    await Promise.all(metrics.map((m) => m.tcp.monitor.routesSettled()));
    await new Promise((r) => setTimeout(r, 100));
    const counted = /^nettrace_(connects|accepts|closes|resets|process_bytes|remote_bytes|rtt_seconds|connect_duration_seconds|retransmits)$/;
    const [a, b] = metrics.map((m) => values(m.families(), counted));
    assert.deepEqual([...b].sort(), [...a].sort());
    assert.equal(a.get('nettrace_process_bytes{"comm":"nt-client","direction":"tx"}'), 30 * 300);
    assert.equal(a.get('nettrace_process_bytes{"comm":"nt-client","direction":"rx"}'), 30 * 5000);
    assert.equal(lean.stats().dropsByKind.state, 0);
  } finally {
    for (const m of metrics) m.close();
    await Promise.all([every.stop(), lean.stop()]);
    await close(server);
  }
});
