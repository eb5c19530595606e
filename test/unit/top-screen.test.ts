/**
 * `nettrace top` without the kernel: the screen rendered from a fixed table at
 * several terminal sizes, and the keys. The terminal through stand-ins is
 * test/kernel/top-terminal.test.ts (the live view loads the addon); the real
 * command against the real kernel is test/kernel/top.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Column, fit, placeColumns } from '../../src/cli/commands/top/columns';
import { decodeKeys, Key } from '../../src/cli/commands/top/input';
import { buildModel, SortKey } from '../../src/cli/commands/top/view-model';
import { lineText, renderScreen, ScreenLine, TopScreen } from '../../src/cli/commands/top/screen';
import { applyKey, initialUi, TopUi } from '../../src/cli/commands/top/ui';
import { EVIL, fixedFlows } from '../support/top-table';

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
