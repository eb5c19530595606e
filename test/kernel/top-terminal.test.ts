/**
 * `nettrace top`'s terminal through stand-ins for its streams and its tracer:
 * alternate screen, raw input, restored on every way out, resizes, plain
 * output when not a terminal. A kernel test only because the live view starts
 * the addon's route and NAT resolvers; the screen and keys alone are
 * test/unit/top-screen.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { TracerStats } from '../../src/trace-options';
import { TopSource } from '../../src/cli/commands/top/session';
import { parseCommand } from '../../src/cli/options';
import { topCommand, TopIo } from '../../src/cli/commands/top/top';
import { topOptions } from '../../src/cli/view-options';
import { ansiLine } from '../../src/cli/commands/top/terminal';

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
