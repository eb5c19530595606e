/**
 * `nettrace bench churn`: that it measures what it says (every connection of
 * the load captured, sane numbers, files written, namespaces removed), not
 * how fast anything is.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { captured, CLI, ROOT, waitFor } from './helpers';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'nettrace-bench-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const STATS = '/proc/sys/kernel/bpf_stats_enabled';

interface Round {
  mode: string;
  seconds: number;
  conns: number;
  rate: number;
  errors: number;
  latencyUs: { p50: number; p99: number; max: number };
  expected: { connect: number; accept: number; close: number } | null;
  captured: { state: number; connect: number; accept: number; close: number } | null;
  drops: number | null;
  missed: number | null;
  bpf: { runs: number; runTimeNs: number; nsPerRun: number; nsPerEvent: number; onStateNsPerRun: number; records: number } | null;
  tracerCpuPct: number;
  rssMiB: { end: number; peak: number };
  series: { t: number; rate: number; p50Us: number; p99Us: number }[];
}

function bench(args: string[]): { status: number | null; stdout: string; stderr: string; pid: number } {
  const r = spawnSync(process.execPath, [CLI, 'bench', 'churn', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, pid: r.pid };
}

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

/** The load's own connections: a record per connect, accept and close, each kept or counted as missed. */
function assertCaptured(r: Round): void {
  assert.ok(r.expected && r.captured, 'a traced round reports expected and captured');
  assert.equal(r.errors, 0, 'no connection failed on an unimpaired link');
  assert.equal(r.expected.connect, r.conns);
  assert.equal(r.expected.accept, r.conns);
  assert.equal(r.expected.close, 2 * r.conns);
  assert.equal(r.drops, 0);
  const lost = (['connect', 'accept', 'close'] as const).reduce((n, k) => n + r.expected![k] - r.captured![k], 0);
  if (r.missed === 0) {
    assert.deepEqual({ ...r.captured, state: 0 }, { ...r.expected, state: 0 });
  } else {
    // a hook run the kernel skipped (re-entered on a loaded CPU) loses its records, and says so
    assert.ok(lost >= 0 && lost <= 3 * r.missed!, `lost ${lost}, missed ${r.missed}`);
  }
  // every connection makes at least 7 transitions (client 3, server child 4) whichever way it closes
  assert.ok(r.captured.state >= 7 * r.conns - 3 * r.missed!, `states ${r.captured.state} for ${r.conns} connections`);
}

function assertSane(r: Round, rate: number, seconds: number): void {
  assert.ok(r.seconds >= seconds * 0.9 && r.seconds < seconds + 3, `seconds ${r.seconds}`);
  assert.ok(r.conns > 0 && r.conns <= rate * r.seconds * 1.2 + 8, `conns ${r.conns} at ${rate}/s for ${r.seconds}s`);
  assert.ok(Math.abs(r.rate - r.conns / r.seconds) < 1e-6);
  const l = r.latencyUs;
  assert.ok(l.p50 > 0 && l.p50 <= l.p99 && l.p99 <= l.max, `latency ${JSON.stringify(l)}`);
  assert.ok(r.series.length >= Math.floor(seconds / 0.25) - 1, `series of ${r.series.length}`);
  assert.ok(r.series.every((p, i) => p.t > 0 && p.rate >= 0 && (i === 0 || p.t > r.series[i - 1].t)));
  assert.ok(r.rssMiB.peak >= r.rssMiB.end * 0.5 && r.rssMiB.peak > 10);
  assert.ok(r.tracerCpuPct >= 0);
}

test('a short traced run captures every connect, accept and close of its load, and reports sane numbers', () => {
  const statsBefore = readFileSync(STATS, 'utf8').trim();
  const r = bench(['--duration', '2', '--rate', '300', '-c', '4', '--acceptors', '2', '--payload', '100', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.benchmark, 'churn');
  assert.equal(j.machine.cpus, os.cpus().length);
  assert.deepEqual(Object.keys(j.summary), ['aggregate']);
  assert.equal(j.options.rate, 300);
  const round: Round = j.rounds[0][0];
  assert.equal(round.mode, 'aggregate');
  assertSane(round, 300, 2);
  assertCaptured(round);
  assert.ok(round.bpf!.runs >= round.captured!.state, 'every captured state came from a counted BPF run');
  assert.ok(round.bpf!.nsPerRun > 0 && round.bpf!.onStateNsPerRun > 0 && round.bpf!.nsPerEvent > 0);
  assert.equal(j.summary.aggregate.complete, round.missed === 0 ? true : j.summary.aggregate.complete);
  assert.equal(readFileSync(STATS, 'utf8').trim(), statsBefore, 'kernel.bpf_stats_enabled is put back');
});

test('--compare runs untraced and traced rounds alternately over IPv6 with FIN, and writes an SVG report', () => {
  const svg = path.join(tmp, 'report.svg');
  const r = bench(['--compare', '--rounds', '2', '-d', '1', '--rate', '200', '-c', '2', '-6', '--close', 'fin', '--mode', 'stream', '--json', '--report', svg]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(j.summary), ['untraced', 'stream']);
  assert.equal(j.rounds.length, 2);
  for (const [untraced, traced] of j.rounds as Round[][]) {
    assert.equal(untraced.mode, 'off');
    assert.equal(untraced.captured, null);
    assert.equal(untraced.bpf, null);
    assert.equal(traced.mode, 'stream');
    assertSane(untraced, 200, 1);
    assertSane(traced, 200, 1);
    assertCaptured(traced);
  }
  const ratio = j.summary.stream.vsUntraced.rate;
  assert.ok(ratio.min > 0 && ratio.min <= ratio.median && ratio.median <= ratio.max);
  const text = readFileSync(svg, 'utf8');
  assert.match(text, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((text.match(/<path /g) ?? []).length, 2 * 3 * 2, 'rate, p50 and p99 lines for each of 4 rounds');
  assert.match(text, /nettrace \(stream\)/);
  assert.match(text, /<\/svg>$/);
});

test('--net veth runs across a veth pair between two namespaces it creates, then removes them', async () => {
  const html = path.join(tmp, 'report.html');
  const child = spawn(process.execPath, [CLI, 'bench', 'churn', '--net', 'veth', '-d', '2', '--rate', '200', '-c', '2', '--json', '--report', html], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { out, err } = captured(child);
  const mine = [`ntb${child.pid}s`, `ntb${child.pid}c`];
  await waitFor(() => mine.every((n) => namespaces().includes(n)), 10_000, 'the two namespaces');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, err());
  assert.deepEqual(namespaces().filter((n) => mine.includes(n)), []);
  const j = JSON.parse(out());
  assert.equal(j.options.net, 'veth');
  assertSane(j.rounds[0][0], 200, 2);
  assertCaptured(j.rounds[0][0]);
  const page = readFileSync(html, 'utf8');
  assert.match(page, /^<!doctype html>/);
  assert.match(page, /<svg /);
  assert.match(page, /nettrace aggregate/);
});

test('an interrupted veth run removes its namespaces and exits 130', async () => {
  const child = spawn(process.execPath, [CLI, 'bench', 'churn', '--net', 'veth', '-d', '30', '--rate', '100', '-c', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const mine = [`ntb${child.pid}s`, `ntb${child.pid}c`];
  try {
    await waitFor(() => mine.every((n) => namespaces().includes(n)), 10_000, 'the two namespaces');
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 130, err);
    assert.equal(err.trim(), 'nettrace: bench interrupted');
    assert.deepEqual(namespaces().filter((n) => mine.includes(n)), []);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('bad options are one line on stderr and exit 2', () => {
  for (const args of [
    ['--rate', 'fast'],
    ['--close', 'maybe'],
    ['--net', 'wifi'],
    ['--mode', 'pretty'],
    ['-4', '-6'],
    ['--untraced', '--compare'],
    ['--report', 'out.png'],
    ['--concurrency', '0'],
    ['--duration', '-1'],
    ['--bogus'],
  ]) {
    const r = bench(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^nettrace: [^\n]+\n$/, `${args.join(' ')}: ${r.stderr}`);
  }
  const r = spawnSync(process.execPath, [CLI, 'bench', 'nope'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, "nettrace: unknown benchmark 'nope' (there is: churn) (see nettrace --help)\n");
});

test('the load generator is an addon of its own: the tracer runs without it, bench says in one line that it is missing', () => {
  // an empty directory over native/churn/, in a private mount namespace: the host's copy stays as it is
  const empty = mkdtempSync(path.join(tmp, 'no-churn-'));
  const without = (...argv: string[]) =>
    spawnSync(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-ec', 'mount --bind "$1" "$2"; shift 2; exec "$@"', 'sh', empty, path.join(ROOT, 'native', 'churn'), ...argv],
      { encoding: 'utf8', timeout: 60_000 },
    );
  const traced = without(
    process.execPath,
    '-e',
    `const t = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'index.js'))}).Tracer.start({});
    const maps = require('node:fs').readFileSync('/proc/self/maps', 'utf8');
    process.stdout.write(JSON.stringify({ tracer: maps.includes('nettrace.linux-x64-gnu.node'), churn: maps.includes('nettrace-churn') }));
    t.stop();`,
  );
  assert.equal(traced.status, 0, traced.stderr);
  assert.deepEqual(JSON.parse(traced.stdout), { tracer: true, churn: false });
  const r = without(process.execPath, CLI, 'bench', 'churn', '-d', '1');
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^nettrace: the load generator addon is not built \(run: npm run build\): [^\n]+\n$/);
});
