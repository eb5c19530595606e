/**
 * A real process named with an escape sequence, a newline, DEL and invalid
 * UTF-8 makes real connections: text output shows the name escaped, JSON
 * stays valid and carries it exactly, and `top` draws it inside its box at
 * every size without any of its bytes reaching the terminal.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import { Tracer } from '../../src';
import { parseCommand } from '../../src/cli/options';
import { topCommand, TopIo } from '../../src/cli/commands/top/top';
import { TOP_OPTIONS, topOptions } from '../../src/cli/view-options';
import { startAttached } from '../support/cli';
import { CLI, FIXTURES } from '../support/paths';
import { close, listen } from '../support/sockets';
import { waitFor } from '../support/wait';

const run = promisify(execFile);
// ESC[2J (clear the screen), a newline, DEL, bytes that are not UTF-8 (0xff, 0xfe) and C1 CSI (0x9b)
const NAME = Buffer.from('1b5b324a0a7fff9bfe41', 'hex');
const AS_JSON = NAME.toString('latin1');
const AS_TEXT = '\\x1b[2J\\x0a\\x7f\\xff\\x9b\\xfeA';

const children: ChildProcess[] = [];
const servers: Awaited<ReturnType<typeof listen>>[] = [];
// a failed assertion skips a test's own finish(): end what it started here, or the open listener keeps the file running
after(async () => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  await Promise.all(servers.splice(0).map((s) => close(s)));
});

/** A loopback listener that after() closes if the test does not get to. */
async function serverFor(): Promise<Awaited<ReturnType<typeof listen>>> {
  const s = await listen('127.0.0.1', 10, 10);
  servers.push(s);
  return s;
}

/** The CLI, once attached: its stdout byte for byte, and a stop by SIGINT that resolves with its exit code. */
async function startCli(name: string, args: string[]): Promise<{ out: () => Buffer; stop: () => Promise<number> }> {
  const cli = await startAttached(args, `nettrace-escape-${name}`, { stderr: 'inherit', children });
  return {
    out: cli.io.outBytes,
    stop: async () => {
      cli.child.kill('SIGINT');
      return (await cli.exited) as number;
    },
  };
}

async function weirdProcess(port: number, count: number): Promise<{ pid: number; localPort: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'weirdname.js'), NAME.toString('hex'), '127.0.0.1', String(port), String(count), '10'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { ...JSON.parse(line.toString()), child };
}

/** Ends the held connection, then the listener (close() waits for its connections). */
async function finish(weird: { child: ChildProcess }, server: Awaited<ReturnType<typeof listen>>): Promise<void> {
  const exited = once(weird.child, 'exit');
  weird.child.kill('SIGKILL');
  await exited;
  servers.splice(servers.indexOf(server), 1);
  await close(server);
}

/** No byte a terminal would act on: only printable ASCII and newlines. */
function assertInert(out: Buffer, what: string): void {
  const bad = [...out].findIndex((b) => (b < 0x20 && b !== 0x0a) || b >= 0x7f);
  assert.equal(bad, -1, `${what}: byte 0x${out[bad]?.toString(16)} at ${bad}`);
}

test('stream and flows: the name is escaped in text and exact in JSON', async () => {
  const server = await serverFor();
  const [text, json] = await Promise.all([startCli('text', ['--port', String(server.port)]), startCli('json', ['--json', '--port', String(server.port)])]);
  const weird = await weirdProcess(server.port, 2);
  const lines = () => json.out().toString('utf8').split('\n').filter(Boolean);
  // two whole connections of 14 records, and the held one's 3 client-side records so far
  await waitFor(() => lines().filter((l) => JSON.parse(l).pid === weird.pid && JSON.parse(l).type === 'close').length >= 2, 10000, 'the closes');

  const events = lines().map((l) => JSON.parse(l));
  const mine = events.filter((e) => e.pid === weird.pid);
  assert.ok(mine.length >= 2 * 3);
  for (const e of mine) assert.equal(e.comm, AS_JSON, 'JSON carries the name exactly');
  assert.equal(mine.filter((e) => e.type === 'connect').length, 3);

  assert.equal(await text.stop(), 0);
  assert.equal(await json.stop(), 0);
  const out = text.out();
  assertInert(out, 'stream text');
  const rows = out.toString().split('\n').filter((l) => l.includes(` ${weird.pid} `));
  assert.ok(rows.length >= 6, out.toString());
  for (const r of rows) assert.match(r, new RegExp(`^\\S+ ${weird.pid} +${AS_TEXT.replace(/[\\[]/g, '\\$&')} +(connect|state|close) `));

  const flows = (await run(process.execPath, [CLI, 'flows', `sport = :${weird.localPort}`], { encoding: 'buffer' })).stdout as Buffer;
  assertInert(flows, 'flows text');
  assert.ok(flows.toString().includes(`${AS_TEXT},pid=${weird.pid}`), flows.toString());
  const flowsJson = (await run(process.execPath, [CLI, 'flows', '--json', `sport = :${weird.localPort}`])).stdout;
  const f = flowsJson.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(f.map((x) => [x.pid, x.comm]), [[weird.pid, AS_JSON]]);
  await finish(weird, server);
});

// top's own sequences: the alternate screen, cursor, wrap, clear, home, attributes
const TOP_SEQUENCE = /\x1b\[(\?1049[hl]|\?25[hl]|\?7[hl]|2J|H|[0-9;]*m)/g;

test('top draws the name escaped, inside its box, at every size', async () => {
  const server = await serverFor();
  const tracer = Tracer.start({ kernelFilter: { ports: [server.port] } });
  const weird = await weirdProcess(server.port, 1);
  let out = '';
  const output = Object.assign(new EventEmitter(), { isTTY: true, columns: 80, rows: 24, write: (s: string) => ((out += s), true) });
  const input = Object.assign(new EventEmitter(), { isTTY: true, setRawMode: () => {}, setEncoding: () => {}, resume: () => {}, pause: () => {} });
  const io = { output, input, errors: { write: () => true } } as unknown as TopIo;
  const { common, values } = parseCommand(['-i', '0.1', `sport = :${server.port} or dport = :${server.port}`], TOP_OPTIONS);
  let ended: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (ended = resolve));
  const view = topCommand(topOptions(common, values), tracer, (code) => ended(code), io);
  try {
    for (const [w, h] of [[80, 24], [120, 40], [40, 10], [20, 6], [200, 8]]) {
      output.columns = w;
      output.rows = h;
      output.emit('resize');
      out = '';
      await waitFor(() => out.split('\x1b[H').length > 2, 10000, `frames at ${w}x${h}`);
      const frame = out.split('\x1b[H').at(-1)!;
      const plain = frame.replace(TOP_SEQUENCE, '');
      assert.doesNotMatch(plain, /[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\uffff]/, `${w}x${h}: only top's own sequences reach the terminal`);
      const lines = plain.split('\r\n');
      assert.equal(lines.length, h, `${w}x${h}: rows`);
      for (const l of lines) assert.ok(l.length <= w, `${w}x${h}: '${l}' is wider`);
      if (w >= 80) assert.ok(plain.includes(AS_TEXT.slice(0, 12)), `${w}x${h}: the name, escaped:\n${lines.join('\n')}`);
    }
  } finally {
    view.quit(0);
    assert.equal(await finished, 0);
    await tracer.stop();
    await finish(weird, server);
  }
});
