/**
 * `nettrace top`, the real command against the real kernel: full-screen inside
 * tmux and as plain output. Its screen, keys and terminal handling through
 * fakes are test/unit/top-screen.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Flow } from '../../src/flows/flow';
import { CLI, FIXTURES } from '../support/paths';
import { close } from '../support/sockets';
import { waitFor } from '../support/wait';

const run = promisify(execFile);
const MY_COMM = fs.readFileSync('/proc/self/comm', 'utf8').trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const children: ChildProcess[] = [];
const servers: net.Server[] = [];
// a server of the test's own, with its socket in a directory the test removes, so nothing else's sessions are touched
const tmuxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-top-'));
const tmuxSocket = path.join(tmuxDir, 'socket');
const tmuxConf = path.join(tmuxDir, 'tmux.conf');
// a pane whose shell ended stays, marked dead, so the test can tell that it ended
fs.writeFileSync(tmuxConf, 'set -g remain-on-exit on\nset -g status off\n');

after(async () => {
  try {
    execFileSync('tmux', ['-S', tmuxSocket, 'kill-server'], { stdio: 'ignore' });
  } catch {
    // no server: no session was started, or all are gone already
  }
  for (const c of children) c.kill('SIGKILL'); // by its pid; a child that already ended is left alone
  await Promise.all(servers.map((s) => close(s)));
  fs.rmSync(tmuxDir, { recursive: true, force: true });
});

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-S', tmuxSocket, '-f', tmuxConf, ...args], { encoding: 'utf8' });
}

const screen = (session: string): string => tmux('capture-pane', '-p', '-t', session);
const pane = (session: string, format: string): string => tmux('display-message', '-p', '-t', session, format).trim();

/** A listener in this process that answers each chunk with up to 1 KiB, so both directions carry bytes. */
async function echoServer(): Promise<number> {
  const server = net.createServer((s) => {
    s.on('data', (d) => s.write(d.subarray(0, 1024)));
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return (server.address() as net.AddressInfo).port;
}

/** test/kernel/fixtures/streamer.js, named nt-streamer: one connection sending 16 KiB every 50 ms for `seconds`. */
async function streamer(port: number, seconds: number): Promise<{ pid: number; localPort: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'streamer.js'), '127.0.0.1', String(port), String(seconds), '16384'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { ...(JSON.parse(line.toString()) as { pid: number; localPort: number }), child };
}

/**
 * Runs `nettrace top ARGS` in a new tmux session of `width`x`height`; the
 * wrapper records its exit code and the terminal's modes after it, then waits
 * for Enter, so the test can ask tmux about the screen while the pane is
 * still alive (tmux hides the cursor of a dead pane).
 */
function startTop(session: string, width: number, height: number, args: string[]): void {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const command = `${process.execPath} ${CLI} top ${quoted}; code=$?; echo EXIT=$code; stty -a; read _; exit $code`;
  tmux('new-session', '-d', '-s', session, '-x', String(width), '-y', String(height), command);
}

async function untilScreen(session: string, cond: (text: string) => boolean, what: string, timeoutMs = 10000, history = false): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = history ? tmux('capture-pane', '-p', '-S', '-', '-t', session) : screen(session);
    if (cond(text)) return text;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the screen was:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The command ended with 0 and left the terminal as it found it. */
async function assertExitedAndRestored(session: string): Promise<void> {
  const text = await untilScreen(session, (t) => /^EXIT=\d+$/m.test(t) && /echoke/.test(t), `${session} to exit`, 10000, true);
  assert.match(text, /^EXIT=0$/m, text);
  assert.ok(!text.includes('nettrace top'), `the alternate screen was left, the shell's screen is back:\n${text}`);
  assert.match(text, /(^|\s)icanon(\s|$)/m, 'canonical input back on');
  assert.match(text, /(^|\s)echo(\s|$)/m, 'echo back on');
  assert.match(text, /(^|\s)isig(\s|$)/m, 'Ctrl-C a signal again');
  assert.deepEqual(pane(session, '#{alternate_on} #{cursor_flag} #{wrap_flag}'), '0 1 1', 'main screen, cursor shown, auto-wrap on');
  tmux('send-keys', '-t', session, 'Enter');
  await waitFor(() => pane(session, '#{pane_dead}') === '1', 10000, `${session}'s shell to end`);
}

/** The pid of the node process tmux's shell runs: a child this test started, through tmux. */
function topPid(session: string): number {
  const sh = pane(session, '#{pane_pid}');
  const kids = fs.readFileSync(`/proc/${sh}/task/${sh}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(kids.length, 1, `one child of the pane's shell, got ${kids}`);
  return kids[0];
}

test('live in tmux: the test traffic appears with its process and host, keys work, q exits 0 and restores the terminal', async () => {
  const port = await echoServer();
  const s = await streamer(port, 20);
  const session = 'keys';
  startTop(session, 120, 40, ['-i', '0.5', `sport = :${port} or dport = :${port}`]);

  const busy = (text: string) =>
    /^nt-streamer +\d+ +1 +[\d.]+[KMG]\/s +[\d.]+[KMG]?\/s +[\d.]+[KMG] /m.test(text) &&
    /\|127\.0\.0\.1 +2 +[\d.]+[KMG]\/s +[\d.]+[KMG]\/s +[\d.]+[KMG] +[\d.]+[KMG]/m.test(text);
  let text = await untilScreen(session, busy, 'nt-streamer and 127.0.0.1 with nonzero rates');
  assert.equal(pane(session, '#{alternate_on} #{cursor_flag} #{wrap_flag}'), '1 0 0', 'alternate screen, cursor hidden, no auto-wrap');
  const lines = text.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, 40, 'the view uses the whole height');
  assert.ok(lines.every((l) => l.length <= 120));
  assert.match(lines[0], /^ nettrace top {2}up [\d.]+[KM]\/s {2}down [\d.]+[KM]\/s {2}2 flows {2}drops 0 {2}missed 0 {2}sort: rate/);
  assert.equal(lines[39].trim(), 'q quit  tab/1-3 pane  s sort  c group  / filter  p pause');
  assert.match(text, new RegExp(`^nt-streamer +${s.pid} `, 'm'));
  assert.match(text, new RegExp(`^${MY_COMM} +${process.pid} `, 'm'));
  assert.match(text, new RegExp(`127\\.0\\.0\\.1:${s.localPort} +127\\.0\\.0\\.1:${port} +ESTAB `));

  tmux('send-keys', '-t', session, '/');
  tmux('send-keys', '-t', session, '-l', 'sport = :80 or');
  tmux('send-keys', '-t', session, 'Enter');
  await untilScreen(session, (t) => /^filter: at column 15: expected a term/m.test(t), 'the syntax error in the status line');

  tmux('send-keys', '-t', session, '/', 'C-u');
  tmux('send-keys', '-t', session, '-l', 'comm nt-streamer');
  tmux('send-keys', '-t', session, 'Enter');
  text = await untilScreen(session, (t) => t.includes('filter: comm nt-streamer') && t.includes(' Processes (1)'), 'the typed filter applied');
  assert.doesNotMatch(text, new RegExp(`^${MY_COMM} +${process.pid} `, 'm'), "this test's end of the connection is filtered out");

  tmux('send-keys', '-t', session, 's', 'p');
  text = await untilScreen(session, (t) => /sort: bytes {2}PAUSED/.test(t), 'sort by bytes, paused');
  const frozen = text.split('\n').find((l) => l.startsWith('nt-streamer'));
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(screen(session).split('\n').find((l) => l.startsWith('nt-streamer')), frozen, 'paused: the numbers stand still');

  // too small for every pane: one at a time, and the focus decides which
  tmux('resize-window', '-t', session, '-x', '60', '-y', '10');
  text = await untilScreen(session, (t) => /^ 1 Processes \(1\) {2}2 Remote hosts \(1\) {2}3 Connections \(1\)/m.test(t), 'the redraw at 60x10');
  assertScreenWithin(text, 60, 10);
  assert.match(text.split('\n')[2], /^Process +PID +Conns +Up\/s/);
  tmux('send-keys', '-t', session, 'Tab');
  await untilScreen(session, (t) => /^Remote host +Conns/m.test(t.split('\n')[2]), 'Tab: the hosts');
  tmux('send-keys', '-t', session, '3');
  await untilScreen(session, (t) => /^Process .*Remote +State/.test(t.split('\n')[2]), '3: the connections');

  tmux('send-keys', '-t', session, 'q');
  await assertExitedAndRestored(session);
  s.child.kill('SIGKILL');
});

function assertScreenWithin(text: string, width: number, height: number): void {
  const lines = text.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, height);
  for (const l of lines) assert.ok(l.length <= width, `'${l}' is wider than ${width}`);
}

test('live in tmux: Ctrl-C, SIGINT, SIGTERM, SIGHUP, --duration and --count each exit 0 and restore the terminal', async () => {
  const ways: [string, string[], (session: string) => void][] = [
    ['ctrl-c', [], (session) => tmux('send-keys', '-t', session, 'C-c')],
    ['sigint', [], (session) => process.kill(topPid(session), 'SIGINT')],
    ['sigterm', [], (session) => process.kill(topPid(session), 'SIGTERM')],
    ['sighup', [], (session) => process.kill(topPid(session), 'SIGHUP')],
    ['duration', ['-d', '5'], () => {}],
    ['count', ['-c', '4'], () => {}],
  ];
  for (const [session, args] of ways) startTop(session, 80, 24, ['-i', '0.5', ...args]);
  for (const [session, , stop] of ways) {
    await untilScreen(session, (t) => t.startsWith(' nettrace top') && pane(session, '#{alternate_on}') === '1', `${session}: the view`);
    stop(session);
  }
  for (const [session] of ways) await assertExitedAndRestored(session);
});

interface Report {
  ts: number;
  processes: { pid: number | null; comm: string | null; host: string | null; tx_bytes: number; tx_rate: number }[];
  hosts: { host: string; flows: number; tx_bytes: number; rx_bytes: number }[];
  connections: Flow[];
  interfaces: { key: string; flows: number }[];
  gateways: { key: string; gateway: string | null; flows: number }[];
}

test('not a terminal: --json prints one object per interval with processes, hosts and connections; -c stops', async () => {
  const port = await echoServer();
  const s = await streamer(port, 8);
  const { stdout } = await run(process.execPath, [CLI, 'top', '-c', '2', '-i', '0.5', '--json', `sport = :${port} or dport = :${port}`]);
  const reports = stdout.trim().split('\n').map((l) => JSON.parse(l) as Report);
  assert.equal(reports.length, 2);
  assert.ok(reports[1].ts - reports[0].ts >= 400, 'an interval apart');
  for (const r of reports) {
    assert.deepEqual(Object.keys(r), ['ts', 'processes', 'containers', 'hosts', 'connections', 'interfaces', 'gateways', 'nat']);
    const mine = r.processes.find((p) => p.pid === s.pid);
    assert.ok(mine, JSON.stringify(r.processes));
    assert.equal(mine.comm, 'nt-streamer');
    assert.ok(mine.tx_bytes > 0 && mine.tx_rate > 0, 'bytes and a rate over the interval');
    assert.deepEqual(
      r.hosts.map((h) => [h.host, h.flows]),
      [['127.0.0.1', 2]],
    );
    const c = r.connections.find((f) => f.pid === s.pid);
    assert.ok(c);
    assert.deepEqual([c.sport, c.daddr, c.dport, c.state], [s.localPort, '127.0.0.1', port, 'ESTABLISHED']);
    // loopback: out through lo, no gateway, from 127.0.0.1, as ip route get 127.0.0.1 says
    assert.deepEqual([c.ifname, c.gateway, c.route_src], ['lo', null, '127.0.0.1']);
    assert.deepEqual(
      r.interfaces.map((i) => [i.key, i.flows]),
      [['lo', 2]],
    );
    assert.deepEqual(
      r.gateways.map((g) => [g.key, g.gateway, g.flows]),
      [['direct', null, 2]],
    );
    assert.ok(r.connections.some((f) => f.pid === process.pid && f.sport === port), "the listener's end");
    assert.ok(!r.connections.some((f) => f.state === 'LISTEN'));
  }

  const text = (await run(process.execPath, [CLI, 'top', '-c', '1', '-i', '0.3', `sport = :${port} or dport = :${port}`])).stdout;
  assert.ok(!text.includes('\x1b'), 'no escape sequences');
  assert.match(text, /^\S+Z {2}up [\d.]+[KM]\/s {2}down [\d.]+[KM]\/s {2}2 flows {2}drops \d+ {2}missed \d+\n\nProcesses\n/);
  assert.match(text, new RegExp(`^nt-streamer +${s.pid} +1 `, 'm'));
  assert.match(text, /\n\nRemote hosts\nRemote host +Conns .*\n127\.0\.0\.1 +2 /);
  assert.match(text, new RegExp(`\\n\\nConnections\\n.*\\nnt-streamer +${s.pid} +127\\.0\\.0\\.1:${s.localPort} +127\\.0\\.0\\.1:${port} +ESTAB `));
  s.child.kill('SIGKILL');
});

test('bad usage of top exits 2 before loading anything', async () => {
  for (const [args, message] of [
    [['top', '-i', '0'], /--interval must be a number of seconds from 0\.1 to 3600, not '0'/],
    [['top', 'sport', '='], /filter: at column 8/],
  ] as const) {
    const r = await run(process.execPath, [CLI, ...args]).then(
      () => assert.fail(`${args.join(' ')} succeeded`),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, message);
  }
  const help = await run(process.execPath, [CLI, 'top', '--help']);
  assert.match(help.stdout, /^Usage: nettrace top \[options\] \[FILTER\]/);
  assert.match((await run(process.execPath, [CLI, '--help'])).stdout, /^ {2}top {17}network use/m);
});
