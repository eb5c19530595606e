/**
 * `nettrace top`: the screen rendered from a fixed table at several terminal
 * sizes, the keys, the terminal restored on every way out, and the real
 * command against the real kernel, full-screen inside tmux and as plain output.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Flow } from '../src/flows/flow';
import { TracerStats } from '../src/trace-options';
import { parseCommand } from '../src/cli/options';
import { topCommand, TopIo } from '../src/cli/commands/top/top';
import { TopSource } from '../src/cli/commands/top/session';
import { topOptions } from '../src/cli/view-options';
import { Column, fit, placeColumns } from '../src/cli/commands/top/columns';
import { decodeKeys, Key } from '../src/cli/commands/top/input';
import { buildModel, SortKey } from '../src/cli/commands/top/view-model';
import { lineText, renderScreen, ScreenLine, TopScreen } from '../src/cli/commands/top/screen';
import { ansiLine } from '../src/cli/commands/top/terminal';
import { applyKey, initialUi, TopUi } from '../src/cli/commands/top/ui';
import { CLI, close, FIXTURES, waitFor } from './helpers';
import { EVIL, fixedFlows } from './fixtures/top-table';

const run = promisify(execFile);
const MY_COMM = fs.readFileSync('/proc/self/comm', 'utf8').trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function screenOf(ui: Partial<TopUi> = {}, workers = 0): TopScreen {
  const u = { ...initialUi(), ...ui };
  return { model: buildModel(fixedFlows(workers), () => true, u.sort), ui: u, stats: { drops: 3, missed: 1 } };
}

function textOf(lines: ScreenLine[]): string[] {
  return lines.map(lineText);
}

/** What must hold at any size: exactly `height` lines of exactly `width` printable characters. */
function assertFits(lines: ScreenLine[], width: number, height: number): void {
  assert.equal(lines.length, height, `${width}x${height}: line count`);
  for (const [i, l] of textOf(lines).entries()) {
    assert.equal(l.length, width, `${width}x${height}: line ${i} is ${l.length} wide: '${l}'`);
    assert.match(l, /^[\x20-\x7e]*$/, `${width}x${height}: line ${i} holds a control or non-ASCII character`);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

test('80x24: processes, hosts and connections stacked, exactly as expected', () => {
  const lines = renderScreen(screenOf(), 80, 24);
  assertFits(lines, 80, 24);
  const expected = [
    ' nettrace top  up 333K/s  down 371K/s  7 flows  drops 3  missed 1  sort: rate   ',
    ' Processes (6)                                                                  ',
    'Process                 PID Conns     Up/s   Down/s   Sent   Recv               ',
    'nt-client              4242     1   313K/s    20K/s   4.8M   293K               ',
    'node                   4100     1    20K/s   303K/s   293K   4.8M               ',
    'curl                   5000     2  1000B/s    49K/s    20K   941K               ',
    'sshd                   6000     1   300B/s   100B/s    88K    29K               ',
    'evil\\x1b[2J\\x07name    7000     1    10B/s     0B/s    10B     0B               ',
    '-                         -     1     0B/s     0B/s     1B     0B               ',
    ' Remote hosts (6)                                                               ',
    'Remote host                         Conns     Up/s   Down/s   Sent   Recv       ',
    '127.0.0.1                               2   332K/s   322K/s   5.1M   5.1M       ',
    '198.51.100.34                           1  1000B/s    49K/s    20K   879K       ',
    '2001:db8:ffff:ffff:ffff:ffff:ffff:1     1   300B/s   100B/s    88K    29K       ',
    '127.0.0.2                               1    10B/s     0B/s    10B     0B       ',
    '198.51.100.9                            1     0B/s     0B/s   700B    63K       ',
    '127.0.0.3                               1     0B/s     0B/s     1B     0B       ',
    ' Connections (7)                                                                ',
    'Process  Local          Remote            State      Up/s   Down/s   Sent   Recv',
    'nt-clie~ 127.0.~1:40000 127.0.0.1:8080    ESTAB    313K/s    20K/s   4.8M   293K',
    'node     127.0.0.1:8080 127.0.0.1:40000   ESTAB     20K/s   303K/s   293K   4.8M',
    'curl     192.0.~5:51000 198.51.100.34:443 ESTAB   1000B/s    49K/s    20K   879K',
    ' +4 more                                                                        ',
    'q quit  tab/1-3 pane  s sort  c group  / filter  p pause                        ',
  ];
  assert.deepEqual(textOf(lines), expected);
});

test('every size from tiny to huge: exact line count, nothing past the width, nothing unescaped', () => {
  const sizes: [number, number][] = [
    [80, 24], [120, 40], [50, 15], [200, 60], [100, 12], [99, 14], [30, 8], [20, 5], [12, 4], [10, 3], [5, 2], [1, 1], [3, 1], [0, 0], [1, 40], [300, 2],
  ];
  for (const [w, h] of sizes) {
    for (const ui of [{}, { focus: 'hosts' as const }, { focus: 'connections' as const }, { editing: 'x'.repeat(400) }, { notice: 'y'.repeat(400) }]) {
      assertFits(renderScreen(screenOf(ui, 40), w, h), w, h);
    }
  }
});

test('120x40: processes and hosts side by side above the connections; control characters escaped', () => {
  const text = textOf(renderScreen(screenOf(), 120, 40));
  assert.match(text[0], /^ nettrace top {2}up 333K\/s {2}down 371K\/s {2}7 flows {2}drops 3 {2}missed 1 {2}sort: rate +$/);
  assert.match(text[1], /^ Processes \(6\) +\| Remote hosts \(6\) +$/);
  assert.match(text[2], /^Process +PID Conns +Up\/s +Down\/s +Sent +Recv\|Remote host +Conns +Up\/s +Down\/s +Sent +Recv$/);
  assert.match(text[3], /^nt-client +4242 +1 +313K\/s +20K\/s +4\.8M +293K\|127\.0\.0\.1 +2 +332K\/s +322K\/s +5\.1M +5\.1M$/);
  const connections = text.findIndex((l) => l.startsWith(' Connections (7)'));
  assert.equal(connections, 9, 'right below the six processes');
  assert.match(text[connections + 1], /^Process +PID Local +Remote +State +Iface +Up\/s +Down\/s +Sent +Recv +RTT$/);
  assert.match(text[connections + 3], /^node +4100 127\.0\.0\.1:8080 +127\.0\.0\.1:40000 +ESTAB +- +20K\/s +303K\/s +293K +4\.8M +0\.04ms$/);
  assert.ok(text.some((l) => l.includes(' [2001:db8:ffff:~f:ffff:1]:52222 ')), 'a long address loses its middle, not its port');
  assert.ok(text.some((l) => l.startsWith('evil\\x1b[2J\\')), 'the escape sequence in a comm is shown, not sent');
  assertFits(renderScreen(screenOf(), 120, 40), 120, 40);
  assert.ok(!text.some((l) => l.includes('0.0.0.0')), 'listeners are left out');
  assert.equal(text[39].trim(), 'q quit  tab/1-3 pane  s sort  c group  / filter  p pause');

  const closedRow = renderScreen(screenOf(), 120, 40).find((l) => lineText(l).includes('198.51.100.9:443'));
  assert.ok(closedRow);
  assert.match(lineText(closedRow), / CLOSED /);
  assert.deepEqual(
    closedRow.map((s) => s.style),
    ['dim'],
    'a closed flow in its grace period is dimmed',
  );

  // with more rows than fit, the focused part gets the larger share
  const row = (focus: TopUi['focus']) => textOf(renderScreen(screenOf({ focus }, 40), 120, 40)).findIndex((l) => l.startsWith(' Connections ('));
  assert.deepEqual([row('processes'), row('hosts'), row('connections')], [27, 27, 13]);
});

test('50x15 stacks narrow panes; smaller still shows one pane at a time under a tab bar', () => {
  const stacked = textOf(renderScreen(screenOf(), 50, 15));
  assert.deepEqual(
    stacked.filter((l) => /^ (Processes|Remote hosts|Connections) \(/.test(l)).map((l) => l.trim()),
    ['Processes (6)', 'Remote hosts (6)', 'Connections (7)'],
  );
  // 50 columns: the least important columns leave first
  const connHeader = stacked[stacked.findIndex((l) => l.startsWith(' Connections')) + 1];
  assert.match(connHeader, /^Process +Remote +State +Up\/s +Down\/s$/);

  const tabs = textOf(renderScreen(screenOf({ focus: 'hosts' }), 50, 10));
  assert.equal(tabs[1], ' 1 Procs (6)  2 Hosts (6)  3 Conns (7)            ', 'short tab names when the full ones do not fit');
  assert.match(tabs[2], /^Remote host +Up\/s +Down\/s +Sent +Recv$/, 'at 50 columns the connection count leaves first');
  assert.match(tabs[3], /^127\.0\.0\.1 /);
  const tabLine = renderScreen(screenOf({ focus: 'hosts' }), 50, 10)[1];
  assert.deepEqual(
    tabLine.filter((s) => s.style === 'focus').map((s) => s.text.trim()),
    ['2 Hosts (6)'],
    'the shown pane is the highlighted tab',
  );
  const wideTabs = textOf(renderScreen(screenOf({ focus: 'connections' }), 120, 8));
  assert.match(wideTabs[1], /^ 1 Processes \(6\) {2}2 Remote hosts \(6\) {2}3 Connections \(7\) /);
  assert.match(wideTabs[2], /^Process +PID Local +Remote/);

  assert.deepEqual(textOf(renderScreen(screenOf(), 12, 2)), [' nettrace t~', 'q quit  tab~']);
  assert.deepEqual(textOf(renderScreen(screenOf(), 4, 1)), [' ne~']);
});

test('rows that do not fit are counted; an empty view says so', () => {
  const text = textOf(renderScreen(screenOf({ focus: 'connections' }, 40), 80, 24));
  assert.ok(text.some((l) => /^ \+\d+ more +$/.test(l)));
  const nothing: TopScreen = { model: buildModel([], () => true, 'rate'), ui: initialUi(), stats: { drops: 0, missed: 0 } };
  const empty = textOf(renderScreen(nothing, 80, 24));
  assert.equal(empty.filter((l) => l.trim() === '(none)').length, 3);
  assert.match(empty[0], /up 0B\/s {2}down 0B\/s {2}0 flows/);
});

test('header and status line: paused, the applied filter, the text being typed, a syntax error', () => {
  const paused = textOf(renderScreen(screenOf({ paused: true, filter: 'dport = :443', sort: 'bytes' }), 120, 40));
  assert.match(paused[0], /sort: bytes {2}PAUSED {2}filter: dport = :443 +$/);
  const typing = textOf(renderScreen(screenOf({ editing: 'state estab' }), 80, 24));
  assert.equal(typing[23], '/state estab' + ' '.repeat(68));
  const longTyping = textOf(renderScreen(screenOf({ editing: 'a'.repeat(100) + 'END' }), 40, 10));
  assert.match(longTyping[9], /^\/a+END $/, 'a long filter scrolls so the end being typed stays visible');
  const error = renderScreen(screenOf({ notice: 'filter: at column 3: expected a port' }), 80, 24)[23];
  assert.equal(lineText(error).trimEnd(), 'filter: at column 3: expected a port');
  assert.equal(error[0].style, 'error');
});

test('sorting: by combined rate, by total bytes, by name', () => {
  const order = (sort: SortKey) => {
    const m = buildModel(fixedFlows(), () => true, sort);
    return { processes: m.processes.map((r) => r.comm), hosts: m.hosts.map((r) => r.host), first: m.connections[0].sport };
  };
  assert.deepEqual(order('rate').processes, ['nt-client', 'node', 'curl', 'sshd', EVIL, null]);
  assert.deepEqual(order('bytes').processes, ['nt-client', 'node', 'curl', 'sshd', EVIL, null]);
  assert.deepEqual(order('bytes').hosts.slice(0, 2), ['127.0.0.1', '198.51.100.34']);
  assert.deepEqual(order('name').processes, ['curl', EVIL, 'node', 'nt-client', 'sshd', null]);
  assert.deepEqual(order('name').hosts, ['127.0.0.1', '127.0.0.2', '127.0.0.3', '198.51.100.9', '198.51.100.34', '2001:db8:ffff:ffff:ffff:ffff:ffff:1']);
  assert.equal(order('rate').first, 40000);
  const totals = buildModel(fixedFlows(), () => true, 'rate').totals;
  assert.deepEqual(totals, { up: 320000 + 20000 + 1000 + 300 + 10, down: 20000 + 310000 + 50000 + 100, flows: 7 });
});

test('columns: the least important leave first, cells are escaped and cut with a mark', () => {
  const cols: Column<string>[] = [
    { title: 'A', min: 10, max: 20, priority: 10, align: 'left', cell: (r) => r },
    { title: 'B', min: 5, max: 5, priority: 1, align: 'right', cell: () => 'bbbbb' },
    { title: 'C', min: 5, max: 5, priority: 5, align: 'right', cell: () => 'ccccc' },
  ];
  const names = (w: number) => placeColumns(cols, ['x'.repeat(30)], w).map((p) => `${p.column.title}${p.width}`);
  assert.deepEqual(names(40), ['A20', 'B5', 'C5']);
  assert.deepEqual(names(21), ['A15', 'C5']);
  assert.deepEqual(names(22), ['A10', 'B5', 'C5']);
  assert.deepEqual(names(20), ['A14', 'C5']);
  assert.deepEqual(names(10), ['A10']);
  assert.deepEqual(names(4), ['A4']);
  assert.deepEqual(names(0), []);
  assert.equal(fit('abcdef', 4), 'abc~');
  assert.equal(fit('ab', 4, 'right'), '  ab');
  assert.equal(fit('\x1b[31m', 20), '\\x1b[31m            ');
  assert.equal(fit('abc', 1), '~');
  assert.equal(fit('127.0.0.1:40000', 12, 'left', 'middle'), '127.0~:40000');
});

// ---------------------------------------------------------------------------------------------
// Keys

function press(ui: TopUi, input: string): { ui: TopUi; quit: boolean } {
  let state = { ui, quit: false };
  for (const key of decodeKeys(input)) {
    state = applyKey(state.ui, key);
    if (state.quit) break;
  }
  return state;
}

test('raw input decodes to keys: Tab, Shift-Tab, Enter, Esc alone, arrows, Ctrl-C, several in one chunk', () => {
  const types = (s: string) => decodeKeys(s).map((k: Key) => (k.type === 'char' ? k.ch : k.type));
  assert.deepEqual(types('q'), ['q']);
  assert.deepEqual(types('\t\x1b[Z\r\x1b'), ['tab', 'backtab', 'enter', 'escape']);
  assert.deepEqual(types('\x1b[A\x1bOB\x1b[1;5Cs'), ['other', 'other', 'other', 's']);
  assert.deepEqual(types('\x03\x7f\x15é'), ['interrupt', 'backspace', 'clearline', 'é']);
});

test('keys: q and Ctrl-C quit, tab and 1/2/3 focus, s cycles the sort, p pauses', () => {
  const ui = initialUi();
  assert.equal(press(ui, 'q').quit, true);
  assert.equal(press(ui, '\x03').quit, true);
  assert.equal(press(ui, '\t').ui.focus, 'hosts');
  assert.equal(press(ui, '\t\t').ui.focus, 'connections');
  assert.equal(press(ui, '\t\t\t').ui.focus, 'processes');
  assert.equal(press(ui, '\x1b[Z').ui.focus, 'connections');
  assert.equal(press(ui, '3').ui.focus, 'connections');
  assert.equal(press(ui, '32').ui.focus, 'hosts');
  assert.deepEqual(['s', 'ss', 'sss'].map((k) => press(ui, k).ui.sort), ['bytes', 'name', 'rate']);
  assert.equal(press(ui, 'p').ui.paused, true);
  assert.equal(press(ui, 'pp').ui.paused, false);
  assert.equal(press(ui, 'x').quit, false);
});

test('keys: / types a filter, Enter applies it, Esc cancels, a syntax error is a notice and not a crash', () => {
  const ui = initialUi();
  const typing = press(ui, '/comm nt-cl');
  assert.equal(typing.ui.editing, 'comm nt-cl');
  assert.equal(press(typing.ui, 'q').quit, false, 'q while typing is a letter');
  assert.equal(press(typing.ui, 'q').ui.editing, 'comm nt-clq');
  assert.equal(press(typing.ui, '\x7f\x7f').ui.editing, 'comm nt-');

  const applied = press(ui, '/comm nt-client\r').ui;
  assert.deepEqual([applied.editing, applied.filter], [null, 'comm nt-client']);
  const shown = buildModel(fixedFlows(), applied.filterMatch!, 'rate');
  assert.deepEqual(shown.connections.map((f) => f.comm), ['nt-client']);
  const addresses = press(ui, '/dst 198.51.100.0/24 and not dport = :80\r').ui;
  assert.deepEqual(buildModel(fixedFlows(), addresses.filterMatch!, 'rate').connections.map((f) => f.dport), [443, 443]);

  const cancelled = press(applied, '/\x15dport = :1\x1b').ui;
  assert.deepEqual([cancelled.editing, cancelled.filter], [null, 'comm nt-client'], 'Esc keeps the filter that was applied');

  const bad = press(applied, '/\x15sport = :80 or\r');
  assert.equal(bad.quit, false);
  assert.equal(bad.ui.filter, 'comm nt-client', 'a bad filter leaves the applied one in place');
  assert.match(bad.ui.notice!, /^filter: at column 15: expected a term/);
  assert.equal(press(bad.ui, 's').ui.notice, null, 'the notice stays until the next key');
  assert.equal(press(bad.ui, '/').ui.editing, 'sport = :80 or', "'/' starts from the text that failed, to fix it");

  const cleared = press(applied, '/\x15\r').ui;
  assert.deepEqual([cleared.filter, cleared.filterMatch], ['', null]);
  assert.equal(press(ui, '/' + 'z'.repeat(5000)).ui.editing!.length, 1000);
});

// ---------------------------------------------------------------------------------------------
// The terminal, with stand-ins for its streams

interface FakeTerminal {
  io: TopIo;
  written: () => string;
  rawModes: boolean[];
  errors: () => string;
  type: (s: string) => void;
}

function fakeTerminal(width = 80, height = 24): FakeTerminal {
  let out = '';
  let err = '';
  const rawModes: boolean[] = [];
  const output = Object.assign(new EventEmitter(), {
    isTTY: true,
    columns: width,
    rows: height,
    write: (s: string) => ((out += s), true),
  });
  const input = Object.assign(new EventEmitter(), {
    isTTY: true,
    setRawMode: (on: boolean) => rawModes.push(on),
    setEncoding: () => {},
    resume: () => {},
    pause: () => {},
  });
  const errors = { write: (s: string) => ((err += s), true) };
  return {
    io: { output, input, errors } as unknown as TopIo,
    written: () => out,
    rawModes,
    errors: () => err,
    type: (s) => input.emit('data', s),
  };
}

/** A tracer with no records and no sockets but what `snapshot` returns, 3 drops and 1 missed run. */
function fakeTracer(snapshot: () => Buffer): TopSource {
  const dropsByKind = { state: 0, connect: 0, accept: 0, close: 0, udp: 0, dns: 0 };
  const native = { records: 0, bytes: 0, ringProduced: 0, batches: 0, drops: 3, dropsByKind, missed: 1, evictions: 0, hookRuns: { state: 0, accept: 0 } };
  const stats: TracerStats = { ...native, queueDrops: 0, snapshotDrops: 0, flowEvictions: 0, nameEvictions: 0 };
  const none = () => Buffer.alloc(0);
  return { onBatch: () => () => {}, snapshot, snapshotUdp: none, udpPeers: none, dnsEnabled: false, flowEnrichers: () => [], stats: () => stats };
}

const ENTER_SCREEN = '\x1b[?1049h\x1b[?25l\x1b[?7l';
const LEAVE_SCREEN = '\x1b[0m\x1b[?7h\x1b[?25h\x1b[?1049l';

function fakeOptions(args: string[] = []) {
  const { common, values } = parseCommand(['-i', '0.1', ...args], { interval: { type: 'string', short: 'i' } });
  return topOptions(common, values);
}

test('the terminal: alternate screen, hidden cursor and raw input while open, all restored by q', async () => {
  const t = fakeTerminal();
  let exitCode: number | undefined;
  topCommand(fakeOptions(), fakeTracer(() => Buffer.alloc(0)), (code) => (exitCode = code), t.io);
  assert.ok(t.written().startsWith(ENTER_SCREEN));
  assert.deepEqual(t.rawModes, [true]);
  assert.match(t.written(), /nettrace top/);
  t.type('\t/bogus(\r');
  assert.match(t.written(), /filter: at column 1/);
  t.type('q');
  assert.equal(exitCode, 0);
  assert.ok(t.written().endsWith(LEAVE_SCREEN));
  assert.deepEqual(t.rawModes, [true, false]);
  const after = t.written().length;
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(t.written().length, after, 'nothing drawn after quitting');
  assert.equal(process.listenerCount('SIGTSTP'), 0, 'no handlers left behind');
});

test('the terminal is restored, and the error shown after it, when a refresh fails', async () => {
  const t = fakeTerminal();
  let calls = 0;
  const tracer = fakeTracer(() => {
    if (++calls > 2) throw new Error('snapshot failed: EIO');
    return Buffer.alloc(0);
  });
  const exited = new Promise<number>((resolve) => topCommand(fakeOptions(), tracer, resolve, t.io));
  assert.equal(await exited, 1);
  assert.ok(t.written().endsWith(LEAVE_SCREEN));
  assert.deepEqual(t.rawModes, [true, false]);
  assert.equal(t.errors(), 'nettrace: snapshot failed: EIO\n');
});

test('a resize redraws at the new size; styles are plain SGR and always reset', async () => {
  const t = fakeTerminal(80, 24);
  let exitCode: number | undefined;
  topCommand(fakeOptions(), fakeTracer(() => Buffer.alloc(0)), (code) => (exitCode = code), t.io);
  const output = t.io.output as unknown as EventEmitter & { columns: number; rows: number };
  output.columns = 30;
  output.rows = 6;
  const before = t.written().length;
  output.emit('resize');
  const frame = t.written().slice(before);
  assert.ok(frame.startsWith('\x1b[H'));
  const rows = frame.slice(3).split('\r\n');
  assert.equal(rows.length, 6);
  // eslint-disable-next-line no-control-regex
  for (const r of rows) assert.equal(r.replace(/\x1b\[[0-9;]*m/g, '').length, 30);
  assert.equal(ansiLine([{ text: 'x', style: 'dim' }, { text: 'y', style: 'plain' }]), '\x1b[2mx\x1b[0my');
  t.type('\x03');
  assert.equal(exitCode, 0);
});

test('with stdout not a terminal there are no escape sequences: one plain report per interval', async () => {
  const t = fakeTerminal();
  (t.io.output as unknown as { isTTY: boolean }).isTTY = false;
  const exited = new Promise<number>((resolve) => topCommand(fakeOptions(['-c', '2']), fakeTracer(() => Buffer.alloc(0)), resolve, t.io));
  assert.equal(await exited, 0);
  assert.deepEqual(t.rawModes, []);
  assert.ok(!t.written().includes('\x1b'));
  assert.equal(t.written().match(/^Processes$/gm)?.length, 2);
  assert.match(t.written(), /drops 3 {2}missed 1\n\nProcesses\nProcess +PID +Conns/);
});

// ---------------------------------------------------------------------------------------------
// The real command against the real kernel

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

/** test/fixtures/streamer.js, named nt-streamer: one connection sending 16 KiB every 50 ms for `seconds`. */
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
