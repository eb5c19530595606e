/**
 * Bursts larger than the ring buffer: every record is delivered or counted as
 * dropped, checked against the kernel's own count of the state hook's runs;
 * the CLI shows the drop in its summary, text and JSON; tracing recovers.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kind } from '../../src/layout';
import { Tracer } from '../../src';
import { startAttached } from '../support/cli';
import { ROOT } from '../support/paths';
import { waitFor } from '../support/wait';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-load-'));
const children: ChildProcess[] = [];
after(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Holds a BPF_ENABLE_STATS descriptor (test/kernel/fixtures/bpf-stats.c) until the returned function is called. */
async function kernelRunStats(): Promise<() => Promise<void>> {
  const exe = path.join(dir, 'bpf-stats');
  execFileSync('cc', ['-O2', '-o', exe, path.join(ROOT, 'test', 'kernel', 'fixtures', 'bpf-stats.c')]);
  const child = spawn(exe, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(line.toString(), 'ready\n');
  return async () => {
    const exited = once(child, 'exit');
    child.stdin!.end();
    await exited;
  };
}

async function echoServer(): Promise<net.Server & { port: number }> {
  const server = net.createServer((s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(server, { port: (server.address() as net.AddressInfo).port });
}

const connect = (port: number) =>
  new Promise<void>((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('data', () => {});
    c.on('error', () => {});
    c.on('end', () => c.end());
    c.on('close', () => resolve());
  });

const burst = (port: number, n: number) => Promise.all(Array.from({ length: n }, () => connect(port)));

test("a burst past a 4 KiB ring: delivered + dropped state records = the kernel's count of state hook runs", async () => {
  const stopStats = await kernelRunStats();
  const server = await echoServer();
  // no kernel filter: every run of the state hook makes a state record, whoever's socket it is
  const tracer = Tracer.start({ ringBytes: 4096, flushMs: 50 });
  const delivered = new Map<number, number>();
  tracer.onBatch((c) => {
    while (c.next()) delivered.set(c.kind, (delivered.get(c.kind) ?? 0) + 1);
  });
  try {
    await burst(server.port, 300);
  } finally {
    await tracer.stop();
    await stopStats();
    server.close();
  }
  const s = tracer.stats();
  const got = (k: number) => delivered.get(k) ?? 0;
  assert.ok(s.drops > 0, 'the burst overflowed the ring');
  assert.ok(s.hookRuns.state >= 300 * 8, `the kernel counted the runs: ${JSON.stringify(s.hookRuns)}`);
  assert.equal(got(Kind.State) + s.dropsByKind.state, s.hookRuns.state, `stats ${JSON.stringify(s)}`);
  const k = s.dropsByKind;
  assert.equal(k.state + k.connect + k.accept + k.close, s.drops, 'drops by kind add up');
  assert.equal([...delivered.values()].reduce((a, b) => a + b, 0), s.records, 'every record the addon took reached the listener');
});

interface Summary {
  type: string;
  events: number;
  drops: number;
  drops_by_kind: Record<string, number>;
  missed: number;
}

async function cliBurst(json: boolean): Promise<{ lines: string[]; stderr: string; code: number; before: number; conns: number }> {
  const server = await echoServer();
  const args = ['--ring-kb', '4', '--port', String(server.port), ...(json ? ['--json'] : [])];
  const { child, io, exited } = await startAttached(args, `nettrace-load-${json}`, { children });
  const { out, err } = io;
  const lines = () => out().split('\n').filter((l) => l && !l.startsWith('TIME '));
  await burst(server.port, 300);
  await new Promise((r) => setTimeout(r, 300));
  const before = lines().length;
  // after the burst: one connection at a time (14 records, 1.9 KB) fits the 4 KiB ring
  for (let i = 0; i < 5; i++) {
    await connect(server.port);
    await new Promise((r) => setTimeout(r, 100));
  }
  await waitFor(() => lines().length >= before + 5 * 14, 10000, 'the records after the burst').catch(() => {});
  child.kill('SIGINT');
  const code = await exited;
  server.close();
  return { lines: lines(), stderr: err(), code: code as number, before, conns: 305 };
}

test('the CLI with --ring-kb 4: a burst shows its drop in the JSON summary, adds up, and tracing recovers', async () => {
  const r = await cliBurst(true);
  assert.equal(r.code, 0);
  const summary = JSON.parse(r.stderr) as Summary;
  assert.equal(summary.type, 'summary');
  assert.ok(summary.drops > 0, r.stderr);
  assert.equal(Object.values(summary.drops_by_kind).reduce((a, b) => a + b, 0), summary.drops);
  assert.equal(summary.events, r.lines.length);
  assert.equal(summary.events + summary.drops + summary.missed, r.conns * 14, 'every record printed or counted');
  assert.equal(r.lines.length - r.before, 5 * 14, 'every record of the connections after the burst');
});

test('the CLI text summary names the drop', async () => {
  const r = await cliBurst(false);
  assert.equal(r.code, 0);
  const m = r.stderr.match(/^nettrace: (\d+) events \(.*\), (\d+) dropped/);
  assert.ok(m, r.stderr);
  assert.ok(Number(m[2]) > 0);
  assert.equal(Number(m[1]), r.lines.length);
  assert.equal(r.lines.length - r.before, 5 * 14);
});
