/**
 * Going without a hook, as on a kernel that lacks it (simulated with
 * `disable`): nettrace starts, says which feature is unavailable, and the rest
 * traces exactly as before. The probe that switches hooks off on a real kernel
 * takes the same path; test/kernel/qemu.test.ts runs it on a second kernel.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { NettraceError, NettraceEvent, Tracer } from '../../src';
import { expectConnections } from '../support/expect';
import { nettracePrograms } from '../support/bpf-objects';
import { spawnCli } from '../support/cli';
import { close, listen, runClient } from '../support/sockets';
import { waitFor } from '../support/wait';
import { traceConnections } from '../support/scenarios';
import { Tracers } from '../support/tracers';

const tracers = new Tracers();
const children: ChildProcess[] = [];
after(async () => {
  children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
  await tracers.stopAll();
});
const start = tracers.start;

const COUNTS = { count: 5, send: 300, reply: 4000 };
const statuses = (t: Tracer) => t.hooks.map((h) => [h.name, h.status]);

test('without the accept hook: reported disabled, every other record exact', async () => {
  const { events, run, tracer } = await traceConnections(start, 4, '127.0.0.1', COUNTS, { disable: ['accept'] });
  assert.deepEqual(statuses(tracer), [
    ['state', 'attached'],
    ['accept', 'disabled'],
    ['snapshot', 'attached'],
    ['udp', 'attached'],
    ['dns', 'unneeded'], // per packet: attached only when the dns events are asked for
  ]);
  expectConnections(events, run, false);
});

test('without the snapshot iterator: snapshot() says so, tracing is whole', async () => {
  const { events, run, tracer } = await traceConnections(start, 6, '::1', COUNTS, { disable: ['snapshot'] });
  const [state, accept, snapshot] = statuses(tracer);
  assert.deepEqual([state, snapshot], [
    ['state', 'attached'],
    ['snapshot', 'disabled'],
  ]);
  assert.ok(accept[1] === 'attached' || accept[1] === 'fallback', `accept ${accept[1]}`);
  expectConnections(events, run);
  const t = start({ disable: ['snapshot'] });
  assert.throws(() => t.snapshot(), (e: unknown) => e instanceof NettraceError && e.code === 'ENOHOOK' && /iter\/tcp\) is unavailable/.test(e.message));
  await t.stop();
});

test('without fexit: accepts come from the syscall tracepoints, records unchanged', async () => {
  const { events, run, tracer } = await traceConnections(start, 4, '127.0.0.1', COUNTS, { disable: ['fexit'] });
  const accept = tracer.hooks[1];
  assert.deepEqual(
    [accept.status, accept.detail],
    ['fallback', 'tracepoints syscalls:sys_exit_accept{,4} (unavailable: fexit/inet_csk_accept: fexit turned off by option)'],
  );
  expectConnections(events, run);
});

test('without the state hook nothing can be traced: one sentence, nothing loaded', () => {
  const before = new Set(nettracePrograms());
  assert.throws(
    () => start({ disable: ['state'] }),
    (e: unknown) =>
      e instanceof NettraceError &&
      e.code === 'ENOHOOK' &&
      e.message === 'nettrace cannot trace without its state hook (tp_btf/inet_sock_set_state): turned off by option',
  );
  assert.deepEqual(nettracePrograms().filter((id) => !before.has(id)), []);
});

test('nettrace --disable accept: one line names what is unavailable, the rest streams', async () => {
  const server = await listen('127.0.0.1', 20, 30);
  const cli = spawnCli(['--json', '--disable', 'accept', '--port', String(server.port)]);
  children.push(cli);
  let stdout = '';
  let stderr = '';
  cli.stdout!.on('data', (d) => (stdout += d));
  cli.stderr!.on('data', (d) => (stderr += d));
  await waitFor(() => stderr.includes('\n'), 20000, 'the start-up line');
  assert.equal(stderr, 'nettrace: accept events are unavailable: --disable accept\n');
  const client = await runClient('127.0.0.1', server.port, 2, 20, 30);
  await waitFor(() => (stdout.match(/"type":"close"/g) ?? []).length === 4, 5000, 'four close lines');
  cli.kill('SIGINT');
  const [code] = await once(cli, 'exit');
  await close(server);
  assert.equal(code, 0);
  const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as NettraceEvent);
  const run = { family: 4 as const, host: '127.0.0.1', port: server.port, count: 2, send: 20, reply: 30 };
  expectConnections(events, { ...run, server: { pid: process.pid, comm: '' }, client: { ...client, comm: 'nt-client' } }, false);
  // with --json the summary is one JSON object too
  const summary = JSON.parse(stderr.trim().split('\n').pop()!) as { type: string; events: number; drops: number };
  assert.deepEqual([summary.type, summary.events, summary.drops], ['summary', 26, 0]);
});

test('nettrace --disable with an unknown name: usage error, exit 2', async () => {
  const cli = spawnCli(['--disable', 'accept,kprobes']);
  let stderr = '';
  cli.stderr!.on('data', (d) => (stderr += d));
  const [code] = await once(cli, 'exit');
  assert.equal(code, 2);
  assert.equal(stderr, "nettrace: --disable takes state, accept, snapshot, udp, dns, fexit, not 'kprobes' (see nettrace --help)\n");
});
