/**
 * nettrace as a package: imported by name from ESM and CommonJS consumers in a temporary project,
 * type-checked from both, the README's examples run against the real kernel with connections the
 * test makes, and the backpressure policy (bounded queue, then drop and count) held to its numbers.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { FlowSnapshot, NettraceError, NettraceEvent, Tracer } from '../src';
import { close, listen, ROOT, runClient, waitFor } from './helpers';

const run = promisify(execFile);
const MY_COMM = fs.readFileSync('/proc/self/comm', 'utf8').trim();

const started: Tracer[] = [];
const children: ChildProcess[] = [];
/** A consumer project: node_modules/nettrace is this repository, resolved through its package.json exports. */
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'nt-lib-consumer-'));
fs.mkdirSync(path.join(project, 'node_modules'));
fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'nettrace'), 'dir');
after(async () => {
  await Promise.all(started.map((t) => t.stop()));
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  fs.rmSync(project, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const file = path.join(project, name);
  fs.writeFileSync(file, text);
  return file;
}

test('ESM and CommonJS consumers import nettrace by name and get the same module', async () => {
  write(
    'esm.mjs',
    `import { createRequire } from 'node:module';
import * as esm from 'nettrace';
import nettrace, { trace, Tracer } from 'nettrace';
const cjs = createRequire(import.meta.url)('nettrace');
const names = Object.keys(esm).filter((n) => n !== 'default').sort();
console.log(JSON.stringify({
  resolved: import.meta.resolve('nettrace'),
  same: trace === cjs.trace && Tracer === cjs.Tracer && nettrace === cjs,
  names,
  cjsNames: Object.keys(cjs).sort(),
  types: [typeof trace, typeof Tracer.start, typeof esm.decodeAll, typeof esm.NettraceError],
}));
`,
  );
  write(
    'cjs.cjs',
    `const nettrace = require('nettrace');
const { trace, Tracer, encodeItems, decodeAll } = require('nettrace');
console.log(JSON.stringify({ resolved: require.resolve('nettrace'), types: [typeof trace, typeof Tracer.start, typeof encodeItems, typeof decodeAll], n: Object.keys(nettrace).length }));
`,
  );
  const esm = JSON.parse((await run(process.execPath, ['esm.mjs'], { cwd: project })).stdout);
  // node resolves the symlink: the files are the repository's own
  assert.equal(esm.resolved, `file://${path.join(fs.realpathSync(ROOT), 'dist', 'esm', 'index.mjs')}`);
  assert.equal(esm.same, true);
  assert.deepEqual(esm.names, esm.cjsNames);
  assert.ok(esm.names.includes('trace') && esm.names.includes('StreamDecoder'));
  assert.deepEqual(esm.types, ['function', 'function', 'function', 'function']);
  const cjs = JSON.parse((await run(process.execPath, ['cjs.cjs'], { cwd: project })).stdout);
  assert.equal(cjs.resolved, path.join(fs.realpathSync(ROOT), 'dist', 'src', 'index.js'));
  assert.deepEqual(cjs.types, ['function', 'function', 'function', 'function']);
  assert.equal(cjs.n, esm.names.length);
});

test('the .d.ts types both consumers: right uses compile, wrong ones are errors', async () => {
  const body = `
const tracer = trace({ flushMs: 5, batchBytes: 65536, maxQueuedBatches: 8, disable: ['accept'], kernelFilter: { ports: [443] } });
async function main(): Promise<void> {
  for await (const ev of tracer) {
    if (ev.type === 'connect') { const r: string = ev.result; const l: number = ev.latency_us; void r; void l; }
    if (ev.type === 'close') { const b: number = ev.tx_bytes; void b; }
    // @ts-expect-error a state event has no latency
    if (ev.type === 'state') void ev.latency_us;
  }
  for await (const s of tracer.snapshots({ intervalMs: 1000, cap: 10 })) {
    const p: Rollup[] = s.processes;
    const pid: number | null = s.flows[0].pid;
    void p; void pid;
  }
  const st: TracerStats = tracer.stats();
  const n: number = st.queueDrops + st.drops + st.evictions + st.records + st.snapshotDrops + st.flowEvictions;
  void n;
  // @ts-expect-error batchBytes is a number
  trace({ batchBytes: 'big' });
  const bytes: Uint8Array = encodeItems([{ type: 'stats', ts: 0, ...st }]);
  const items: StreamItem[] = decodeAll(bytes).items;
  void items;
  await tracer.stop();
}
void main;
`;
  write('types.mts', `import { trace, encodeItems, decodeAll } from 'nettrace';\nimport type { Rollup, TracerStats, StreamItem } from 'nettrace';\n${body}`);
  write('types.cts', `import { trace, encodeItems, decodeAll } from 'nettrace';\nimport type { Rollup, TracerStats, StreamItem } from 'nettrace';\n${body}`);
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = ['--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types')];
  const r = await run(process.execPath, [tsc, ...args, 'types.mts', 'types.cts'], { cwd: project }).catch((e: { stdout: string }) => e);
  assert.equal(r.stdout, '');
  // and the checker does read them: one wrong line more is an error in each
  write('wrong.mts', `import { trace } from 'nettrace';\nconst n: string = trace().stats().drops;\nvoid n;\n`);
  write('wrong.cts', `import { trace } from 'nettrace';\nconst n: string = trace().stats().drops;\nvoid n;\n`);
  const wrong = await run(process.execPath, [tsc, ...args, '--skipLibCheck', 'wrong.mts', 'wrong.cts'], { cwd: project }).catch((e: { stdout: string }) => e);
  assert.match(wrong.stdout, /wrong\.mts\(2,7\): error TS2322: Type 'number' is not assignable to type 'string'/);
  assert.match(wrong.stdout, /wrong\.cts\(2,7\): error TS2322: Type 'number' is not assignable to type 'string'/);
});

test('backpressure: a consumer that stops pulling costs a bounded queue; every record is delivered or counted', async () => {
  const server = await listen('127.0.0.1', 10, 20);
  const onPort = (c: { sport: number; dport: number }) => c.sport === server.port || c.dport === server.port;
  const tracer = Tracer.start({ filter: onPort, maxQueuedBatches: 1, flushMs: 1 });
  started.push(tracer);
  let produced = 0;
  let batches = 0;
  tracer.onBatch((c) => {
    const before = produced;
    while (c.next()) produced++;
    if (produced > before) batches++;
  });
  const events = tracer[Symbol.asyncIterator]();
  const first = events.next(); // the consumer takes one event, then stalls
  for (let i = 0; i < 5; i++) {
    await runClient('127.0.0.1', server.port, 1, 10, 20);
    await waitFor(() => produced >= 14 * (i + 1), 5000, `the records of connection ${i + 1}`);
  }
  assert.ok(batches >= 3, `${batches} batches`);
  assert.ok(tracer.stats().queueDrops > 0, 'a stalled consumer loses batches past the bound');
  await tracer.stop();
  await close(server);
  const delivered: NettraceEvent[] = [(await first).value as NettraceEvent];
  for (let r = await events.next(); !r.done; r = await events.next()) delivered.push(r.value);
  // 5 connections, 7 records on each side: 5 transitions, the connect or accept, the close
  assert.equal(produced, 70);
  assert.equal(delivered.length + tracer.stats().queueDrops, produced);
  assert.ok(delivered.every(onPort));
});

test('snapshots: a slow consumer gets the newest, skipped ones and evicted flows are counted; bad options are EINVAL', async () => {
  const tracer = Tracer.start({ flushMs: 5 });
  started.push(tracer);
  const snaps = tracer.snapshots({ intervalMs: 100, cap: 2 });
  const first = (await snaps.next()).value as FlowSnapshot;
  await waitFor(() => tracer.stats().snapshotDrops >= 2, 10000, 'two snapshots skipped');
  const next = (await snaps.next()).value as FlowSnapshot;
  assert.ok(next.ts > first.ts + 100, 'the newest snapshot, not the next one');
  assert.ok(first.flows.length <= 2 && next.flows.length <= 2);
  assert.ok(tracer.stats().flowEvictions > 0, 'the sockets beyond the cap were evicted and counted');
  await snaps.return(undefined);
  await tracer.stop();
  assert.throws(() => Tracer.start({ batchBytes: 100 }), (e: unknown) => e instanceof NettraceError && e.code === 'EINVAL' && /batch size 100 bytes/.test(e.message));
});

/** The JavaScript examples of docs/library.md (once the README's), by the file name their first line gives. */
function readmeExamples(): Map<string, string> {
  const readme = fs.readFileSync(path.join(ROOT, 'docs', 'library.md'), 'utf8');
  const out = new Map<string, string>();
  for (const m of readme.matchAll(/```js\n\/\/ (\S+)\n([\s\S]*?)```/g)) out.set(m[1], m[2]);
  return out;
}

function startExample(file: string, port: number): { child: ChildProcess; lines: string[]; done: Promise<number | null> } {
  const child = spawn(process.execPath, [file, String(port)], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on('data', (d) => (err += d));
  const done = once(child, 'exit').then(([code]) => {
    if (err) lines.push(`stderr: ${err}`);
    return code as number | null;
  });
  return { child, lines, done };
}

test("the README's examples run as written, from ESM and CommonJS, against connections the test makes", async () => {
  const examples = readmeExamples();
  assert.deepEqual([...examples.keys()].sort(), ['connects.mjs', 'rollups.cjs'], 'every example has a check here');
  for (const [name, code] of examples) write(name, code);

  // connects.mjs: two connections from another process, each connect and close line exact
  const server = await listen('127.0.0.1', 100, 300);
  const ex = startExample('connects.mjs', server.port);
  await waitFor(() => ex.lines.includes(`tracing connections to port ${server.port}`), 15000, 'the example to start');
  const client = await runClient('127.0.0.1', server.port, 2, 100, 300);
  assert.equal(await ex.done, 0, ex.lines.join('\n'));
  await close(server);
  const connect = `nt-client (pid ${client.pid}) connected to 127.0.0.1:${server.port}: ok in `;
  assert.equal(ex.lines.filter((l) => l.startsWith(connect) && / \d+ us$/.test(l)).length, 2, ex.lines.join('\n'));
  assert.equal(ex.lines.filter((l) => /^closed after \d+ us: sent 100 B, received 300 B$/.test(l)).length, 2, ex.lines.join('\n'));
  assert.match(ex.lines.at(-1)!, /^records \d+, dropped by the kernel 0, evicted 0, dropped in the queue 0$/);

  // rollups.cjs: a connection of this process's made while it runs, with known bytes each way
  const peerServer = await listen('127.0.0.1', 1000, 2000);
  const roll = startExample('rollups.cjs', peerServer.port);
  const mine = `  ${process.pid}/${MY_COMM}: `;
  await waitFor(() => roll.lines.includes(`${mine}1 sockets, sent 0 B, received 0 B`), 15000, 'a snapshot with the listener alone');
  const peer = net.connect(peerServer.port, '127.0.0.1');
  let got = 0;
  peer.on('data', (d) => (got += d.length));
  await once(peer, 'connect');
  peer.write(Buffer.alloc(1000, 0x62));
  await waitFor(() => got === 2000, 5000, 'the reply');
  // the listener and both ends of the connection are this process's: 3 sockets, 3000 B each way
  await waitFor(() => roll.lines.includes(`${mine}3 sockets, sent 3000 B, received 3000 B`), 15000, 'the connection in a snapshot');
  roll.child.kill('SIGINT');
  assert.equal(await roll.done, 0, roll.lines.join('\n'));
  peer.destroy();
  await close(peerServer);
  const heads = roll.lines.filter((l) => !l.startsWith('  '));
  for (const h of heads) assert.match(h, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z: [1-3] sockets on port ${peerServer.port}$`));
  assert.ok(roll.lines.every((l) => !l.startsWith('  ') || l.startsWith(mine)), 'only this process uses the port');
});
