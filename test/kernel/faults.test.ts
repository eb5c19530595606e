/**
 * A library consumer that fails or vanishes, and two instances at once: the
 * kernel keeps nothing of a tracer that has gone (checked by id with bpftool),
 * and instances never see less or stop each other.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { Tracer } from '../../src';
import { BpfIds, gone, heldBpf, normalized, stillThere } from '../support/bpf-objects';
import { captured, startAttached } from '../support/cli';
import { FIXTURES } from '../support/paths';
import { close, listen, runClient } from '../support/sockets';
import { waitFor } from '../support/wait';

const NONE: BpfIds = { programs: [], links: [], maps: [] };
const children: ChildProcess[] = [];
after(() => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));

test('an error thrown in a for-await loop ends the trace: nothing of it stays in the kernel', async () => {
  const server = await listen('127.0.0.1', 10, 10);
  const before = heldBpf(process.pid);
  const tracer = Tracer.start({ kernelFilter: { ports: [server.port] } });
  const ids = normalized(tracer.kernelIds);
  const mine = heldBpf(process.pid);
  const added = (k: keyof BpfIds) => mine[k].filter((id) => !before[k].includes(id));
  assert.deepEqual(ids, { programs: added('programs'), links: added('links'), maps: added('maps') }, 'kernelIds is what this process gained');
  void runClient('127.0.0.1', server.port, 1, 10, 10);
  await assert.rejects(async () => {
    for await (const ev of tracer) throw new Error(`failed at ${ev.type}`);
  }, /failed at state/);
  await tracer.done;
  await close(server);
  assert.deepEqual(await gone(ids), NONE);
});

for (const mode of ['throw', 'exit'] as const) {
  test(`a consumer process that ${mode === 'throw' ? 'dies of an uncaught error in its loop' : 'exits'} without stop(): nothing stays`, async () => {
    const server = await listen('127.0.0.1', 10, 10);
    const child = spawn(process.execPath, [path.join(FIXTURES, 'consumer.js'), String(server.port), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const { out, err } = captured(child);
    const exited = once(child, 'exit');
    await waitFor(() => out().includes('\n'), 20000, 'the consumer to start');
    const ids = normalized(JSON.parse(out()) as BpfIds);
    assert.deepEqual(ids, heldBpf(child.pid!), 'kernelIds is every BPF object the process holds');
    await runClient('127.0.0.1', server.port, 1, 10, 10);
    const [code] = await exited;
    await close(server);
    if (mode === 'throw') {
      assert.equal(code, 1);
      assert.match(err(), /consumer failed on its first state event/);
    } else assert.equal(code, 0);
    assert.deepEqual(await gone(ids), NONE);
  });
}

interface Instance {
  child: ChildProcess;
  ids: () => BpfIds;
  lines: () => Record<string, unknown>[];
  exited: Promise<number | null>;
}

async function instance(name: string, port: number): Promise<Instance> {
  const cli = await startAttached(['--json', '--port', String(port)], `nettrace-faults-${name}`, { children });
  const ids = cli.ids();
  return { child: cli.child, ids: () => ids, lines: () => cli.io.out().split('\n').filter(Boolean).map((l) => JSON.parse(l)), exited: cli.exited };
}

/** A record without what each instance measures with its own clock. */
function comparable(e: Record<string, unknown>): string {
  const { ts: _ts, old_us: _o, latency_us: _l, queued_us: _q, duration_us: _d, ...rest } = e;
  return JSON.stringify(rest);
}

test('two instances at once see the same records, and stopping one leaves the other working', async () => {
  const server = await listen('127.0.0.1', 10, 10);
  const a = await instance('a', server.port);
  const b = await instance('b', server.port);
  assert.deepEqual(
    a.ids().programs.filter((id) => b.ids().programs.includes(id)),
    [],
    'each has programs of its own',
  );
  const N = 10;
  await runClient('127.0.0.1', server.port, N, 10, 10);
  await waitFor(() => a.lines().length >= 14 * N && b.lines().length >= 14 * N, 10000, 'both to see every record');
  const sortedOf = (i: Instance) => i.lines().map(comparable).sort();
  assert.equal(a.lines().length, 14 * N);
  assert.deepEqual(sortedOf(a), sortedOf(b), 'the same records, field for field');

  a.child.kill('SIGINT');
  assert.deepEqual(await a.exited, 0);
  assert.deepEqual(await gone(a.ids()), NONE, "the stopped one's objects are gone");
  assert.deepEqual(stillThere(b.ids()), b.ids(), "the other's are all there");
  await runClient('127.0.0.1', server.port, N, 10, 10);
  await waitFor(() => b.lines().length >= 2 * 14 * N, 10000, 'the survivor to see the new connections');
  b.child.kill('SIGINT');
  assert.deepEqual(await b.exited, 0);
  assert.equal(b.lines().length, 2 * 14 * N);
  assert.deepEqual(await gone(b.ids()), NONE);
  await close(server);
});
