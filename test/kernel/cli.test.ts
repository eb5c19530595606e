/** The `nettrace` command as a person runs it: real kernel, real signals, exit codes. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stillThere } from '../support/bpf-objects';
import { startAttached } from '../support/cli';
import { CLI } from '../support/paths';
import { close, listen, runClient } from '../support/sockets';
import { waitFor } from '../support/wait';
import { isRepeat } from '../support/expect';

const run = promisify(execFile);

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const children: ChildProcess[] = [];
after(() => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));

const idsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-cli-'));
after(() => fs.rmSync(idsDir, { recursive: true, force: true }));

/**
 * Starts the CLI and waits until it has attached; `progs` are its program ids: its own, whatever other
 * tracers run meanwhile. `done` once it has ended, with all it wrote.
 */
async function start(args: string[]): Promise<{ child: ChildProcess; done: Promise<Finished>; out: () => string; progs: number[] }> {
  const cli = await startAttached(args, 'nettrace-cli', { children });
  const done = cli.exited.then(() => ({ code: cli.child.exitCode, signal: cli.child.signalCode, stdout: cli.io.out(), stderr: cli.io.err() }));
  return { child: cli.child, done, out: cli.io.out, progs: cli.ids().programs };
}

async function fails(args: string[], opts: { uid?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    await run(process.execPath, [CLI, ...args], { uid: opts.uid, gid: opts.uid, env: opts.env });
  } catch (e) {
    const err = e as { code: number; stderr: string; stdout: string };
    return err;
  }
  throw new Error(`nettrace ${args.join(' ')} succeeded`);
}

test('--help and --version exit 0', async () => {
  const help = await run(process.execPath, [CLI, '--help']);
  assert.match(help.stdout, /^Usage: nettrace \[options\]/);
  assert.match(help.stdout, /--json/);
  const version = await run(process.execPath, [CLI, '--version']);
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
  const bpf = crypto.createHash('sha256').update(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'bpf', 'nettrace.bpf.o'))).digest('hex');
  const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).trim();
  assert.match(version.stdout, new RegExp(`^nettrace ${pkg.version.replace(/\./g, '\\.')} \\(commit ${commit}(-dirty)?, bpf sha256 ${bpf.slice(0, 16)}\\)\n$`));
});

test('bad usage: one line on stderr, exit 2, nothing loaded', async () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^nettrace: Unknown option '--bogus' \(see nettrace --help\)\n$/],
    [['--pid', 'abc'], /^nettrace: --pid must be a whole number from 1 to \d+, not 'abc'/],
    [['--port', '70000'], /^nettrace: --port must be a whole number from 0 to 65535/],
    [['--count', '0'], /^nettrace: --count must be a whole number/],
    [['--duration', '-1'], /^nettrace: Option '--duration' argument is ambiguous \(see nettrace --help\)\n$/],
    [['--comm', 'a-name-longer-than-15'], /^nettrace: --comm takes a process name of 1 to 15 characters/],
    [['stray'], /^nettrace: filter: at column 1: expected a term .*, got 'stray' \(see nettrace --help\)\n$/],
    [['flows', 'sport', '=', ':80', 'or'], /^nettrace: filter: at column 15: expected a term/],
    [['--ring-kb', '6'], /^nettrace: --ring-kb must be a power of two/],
  ];
  // a run that attaches writes its kernel ids here: none may
  const ids = path.join(idsDir, 'bad-usage');
  for (const [args, message] of cases) {
    const r = await fails(args, { env: { ...process.env, NETTRACE_KERNEL_IDS: ids } });
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, message);
    assert.equal(r.stderr.split('\n').length, 2, `one line for ${args.join(' ')}: ${r.stderr}`);
  }
  assert.ok(!fs.existsSync(ids), 'nothing was loaded');
});

test('unprivileged: one line naming what is missing, exit 1', async () => {
  const r = await fails(['--count', '1'], { uid: 65534 });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'nettrace: nettrace needs root (or CAP_BPF and CAP_PERFMON) to load its BPF programs\n');
  assert.equal(r.stdout, '');
});

test('--json streams every record of a connection with the documented keys; SIGINT stops cleanly', async () => {
  const server = await listen('::1', 100, 200);
  const { progs, ...cli } = await start(['--json', '--port', String(server.port)]);
  const client = await runClient('::1', server.port, 3, 100, 200);
  await waitFor(() => (cli.out().match(/"type":"close"/g) ?? []).length === 6, 5000, 'six close lines');
  cli.child.kill('SIGINT');
  const r = await cli.done;
  await close(server);
  assert.equal(r.code, 0);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  // the kernel may report close() setting LAST_ACK again (see the moderate-rate test in core)
  assert.equal(events.filter((e) => !isRepeat(e)).length, 3 * 14);
  const connects = events.filter((e) => e.type === 'connect');
  assert.equal(connects.length, 3);
  for (const e of connects) {
    for (const key of ['type', 'ts', 'pid', 'comm', 'family', 'saddr', 'sport', 'daddr', 'dport', 'result', 'latency_us']) {
      assert.ok(key in e, `connect lacks ${key}`);
    }
    assert.deepEqual([e.pid, e.comm, e.family, e.daddr, e.dport, e.result], [client.pid, 'nt-client', 6, '::1', server.port, 'ok']);
    assert.ok(Math.abs(e.ts - Date.now()) < 60000, 'ts is wall-clock milliseconds');
  }
  const states = events.filter((e) => e.type === 'state');
  assert.ok(states.every((e) => typeof e.old === 'string' && typeof e.new === 'string'));
  assert.ok(states.some((e) => e.old === 'SYN_SENT' && e.new === 'ESTABLISHED'));
  const closes = events.filter((e) => e.type === 'close' && e.pid === client.pid);
  assert.equal(closes.length, 3);
  for (const e of closes) {
    assert.deepEqual([e.tx_bytes, e.rx_bytes, e.retrans], [100, 200, 0]);
    assert.ok(e.duration_us > 0 && e.srtt_us > 0);
  }
  const summary = JSON.parse(r.stderr);
  assert.deepEqual([summary.type, summary.events, summary.by_kind.connect, summary.drops], ['summary', 42, 3, 0]);
  assert.deepEqual(stillThere({ programs: progs, links: [] }).programs, [], 'no program is left after SIGINT');
});

test('SIGTERM stops cleanly and removes every program', async () => {
  const { progs, ...cli } = await start([]);
  cli.child.kill('SIGTERM');
  const r = await cli.done;
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^TIME +PID +COMM +EVENT +LOCAL +REMOTE +DETAIL +DUR +BYTES\n/);
  assert.match(r.stderr, /events.*, \d+ dropped\n$/);
  assert.deepEqual(stillThere({ programs: progs, links: [] }).programs, []);
});

test('text lines; --count ends the run by itself; filters by pid and family', async () => {
  const server = await listen('127.0.0.1', 10, 10);
  // the test process listens and accepts: its pid owns exactly the accept side
  const { progs, ...cli } = await start(['--pid', String(process.pid), '-4', '--port', String(server.port), '--count', '4']);
  await runClient('127.0.0.1', server.port, 2, 10, 10);
  const r = await cli.done;
  await close(server);
  assert.equal(r.code, 0);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1 + 4, 'header and exactly --count lines');
  for (const line of lines.slice(1)) {
    const cols = line.split(/ +/);
    assert.equal(cols[1], String(process.pid));
    assert.match(cols[4], new RegExp(`^127\\.0\\.0\\.1:${server.port}$`));
    assert.match(cols[3], /^(accept|state|close)$/);
  }
  assert.match(lines[1], /accept +127\.0\.0\.1:\d+ +127\.0\.0\.1:\d+ +queued/);
  assert.deepEqual(stillThere({ programs: progs, links: [] }).programs, []);
});
