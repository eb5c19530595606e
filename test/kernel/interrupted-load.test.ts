/**
 * Loading that signals cannot break. The kernel's verifier gives up (EAGAIN)
 * when a signal is pending on the thread that loads a program, and a CPU
 * profiler signals the JavaScript thread (SIGPROF, by tgkill) every sampling
 * interval. nettrace must start, with every hook as it attaches unprofiled, and
 * trace exactly: through the library and the CLI, inside V8's CPU profiler
 * (`node --cpu-prof` and a node:inspector session) and in a process signalled
 * every millisecond.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Tracer } from '../../src';
import { NativeHook } from '../../src/native';
import { expectConnections } from '../support/expect';
import type { InterruptedReport } from './fixtures/interrupted';
import { captured } from '../support/cli';
import { CLI, ROOT } from '../support/paths';
import { close, listen } from '../support/sockets';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntk-interrupted-'));
const FIXTURE = path.join(ROOT, 'dist', 'test', 'kernel', 'fixtures', 'interrupted.js');
const PRELOAD = path.join(ROOT, 'dist', 'test', 'kernel', 'fixtures', 'count-signals.js');
const EVERY_MS = path.join(dir, 'every-ms');
const SIGWINCH = String(os.constants.signals.SIGWINCH);
// V8 samples every 50 µs: every load of every program sees several SIGPROFs
const PROFILE = ['--cpu-prof', '--cpu-prof-interval', '50', '--cpu-prof-dir', dir];
const ROUNDS = 2;

let reference: NativeHook[];
let server: net.Server & { port: number };

before(async () => {
  execFileSync('cc', ['-O2', '-o', EVERY_MS, path.join(ROOT, 'test', 'kernel', 'fixtures', 'every-ms.c')]);
  const t = Tracer.start({});
  reference = t.hooks;
  await t.stop();
  server = await listen('127.0.0.1', 1, 1);
});

after(async () => {
  await close(server);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const io = captured(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out: io.out(), err: io.err() };
}

/** Every round started with the hooks an unprofiled start gets, and traced its connections exactly. */
function expectRounds(r: { code: number | null; out: string; err: string }): InterruptedReport {
  assert.equal(r.code, 0, `the fixture failed: ${r.err}`);
  const report = JSON.parse(r.out) as InterruptedReport;
  assert.equal(report.rounds.length, ROUNDS * 2);
  for (const round of report.rounds) {
    assert.deepEqual(round.hooks, reference, 'no hook fell back or went off because of a signal');
    expectConnections(round.events, round.run);
  }
  return report;
}

/** The sample counts of the CPU profiles node wrote, which are then removed. */
function takeProfiles(): number[] {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  return files.map((f) => {
    const profile = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { samples: number[] };
    fs.rmSync(path.join(dir, f));
    return profile.samples.length;
  });
}

test('the library starts and traces inside a node:inspector CPU profiler session sampling every 50 µs', async (t) => {
  const report = expectRounds(await run([process.execPath, FIXTURE, 'inspector', String(ROUNDS)]));
  t.diagnostic(`${report.samples} profiler samples`);
  assert.ok(report.samples > 1000, `the profiler sampled throughout: ${report.samples} samples`);
});

test('the library starts and traces under node --cpu-prof', async (t) => {
  expectRounds(await run([process.execPath, ...PROFILE, FIXTURE, 'plain', String(ROUNDS)]));
  const samples = takeProfiles();
  assert.equal(samples.length, 1, 'node wrote its CPU profile');
  t.diagnostic(`${samples[0]} profiler samples`);
  assert.ok(samples[0] > 1000, `the profiler sampled throughout: ${samples[0]} samples`);
});

test('the library starts and traces in a process signalled every millisecond', async (t) => {
  const sent = path.join(dir, 'sent');
  const received = path.join(dir, 'received');
  const env = { ...process.env, NETTRACE_TEST_SIGNALS_FILE: received };
  expectRounds(await run([EVERY_MS, sent, SIGWINCH, process.execPath, '-r', PRELOAD, FIXTURE, 'plain', String(ROUNDS)], env));
  const n = Number(fs.readFileSync(received, 'utf8'));
  const what = `the process handled ${n} of ${fs.readFileSync(sent, 'utf8').trim()} signals`;
  t.diagnostic(what);
  assert.ok(n > 200, what);
});

/** `nettrace flows -l` lists the test's listener; stderr (the hooks that are off) is what an unprofiled run prints. */
async function expectCliListing(prefix: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const args = [CLI, 'flows', '-l', '-t', `sport = :${server.port}`];
  const plain = await run([process.execPath, ...args]);
  assert.equal(plain.code, 0, plain.err);
  for (let i = 0; i < 3; i++) {
    const r = await run([...prefix, ...args], env);
    assert.equal(r.code, 0, `run ${i}: ${r.err}`);
    assert.equal(r.err, plain.err);
    assert.match(r.out, new RegExp(`^LISTEN +0 +511 +127\\.0\\.0\\.1:${server.port} +0\\.0\\.0\\.0:\\* .*pid=${process.pid}`, 'm'));
  }
}

test('the CLI starts under node --cpu-prof', async (t) => {
  await expectCliListing([process.execPath, ...PROFILE]);
  const samples = takeProfiles();
  assert.equal(samples.length, 3, 'node wrote a CPU profile per run');
  t.diagnostic(`profiler samples per run: ${samples.join(', ')}`);
  for (const n of samples) assert.ok(n > 100, `the profiler sampled throughout: ${n} samples`);
});

test('the CLI starts in a process signalled every millisecond', async (t) => {
  const received = path.join(dir, 'received-cli');
  await expectCliListing([EVERY_MS, path.join(dir, 'sent-cli'), SIGWINCH, process.execPath, '-r', PRELOAD], {
    ...process.env,
    NETTRACE_TEST_SIGNALS_FILE: received,
  });
  const n = Number(fs.readFileSync(received, 'utf8'));
  const what = `the last run handled ${n} of ${fs.readFileSync(path.join(dir, 'sent-cli'), 'utf8').trim()} signals`;
  t.diagnostic(what);
  assert.ok(n > 50, what);
});
