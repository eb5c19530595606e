/**
 * What a fleet needs of OTLP: each agent its own stable identity, values in
 * their types, no empty metrics, UDP events as UDP, and what could not be sent
 * counted while /metrics keeps serving.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { agentResource } from '../../src';
import { valueOf } from '../support/exposition';
import { FIXTURES } from '../support/paths';
import { scrape, startServe } from '../support/serve';
import { closedPort } from '../support/sockets';
import { waitFor } from '../support/wait';
import { closeReceivers, logRecords, points, receiver } from '../support/otlp-receiver';

const children: ChildProcess[] = [];
after(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  closeReceivers();
});
const VERSION: string = require('../../../package.json').version;
const env = { ...process.env, OTEL_METRIC_EXPORT_INTERVAL: '300', K8S_NODE_NAME: 'ntfl-k8s-node', K8S_POD_NAME: 'nettrace-ntfl-x1' };

test('serve --otlp: the resource names the agent (stable instance id, host.name, version, k8s.* from the downward API), and two agents differ', async () => {
  const rx = await receiver();
  const run = async (node: string): Promise<Record<string, unknown>> => {
    const served = await startServe(['--listen', '127.0.0.1:0', '--otlp', `http://127.0.0.1:${rx.port}`, '--node', node, 'dport = :1'], env, children);
    const before = rx.got.length;
    await waitFor(() => rx.got.slice(before).some((g) => g.path === '/v1/metrics'), 20000, 'a metrics export');
    served.child.kill('SIGTERM');
    assert.equal((await served.done).code, 0);
    return points(rx.got.slice(before).filter((g) => g.path === '/v1/metrics'))[0].resource;
  };
  const a1 = await run('ntfl-node-a');
  const a2 = await run('ntfl-node-a');
  const b = await run('ntfl-node-b');
  assert.equal(a1['service.name'], 'nettrace');
  assert.equal(a1['service.version'], VERSION);
  assert.equal(a1['host.name'], 'ntfl-node-a');
  assert.equal(a1['k8s.node.name'], 'ntfl-k8s-node');
  assert.equal(a1['k8s.pod.name'], 'nettrace-ntfl-x1');
  assert.match(String(a1['service.instance.id']), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(a2['service.instance.id'], a1['service.instance.id'], 'the same agent keeps its id across restarts');
  assert.notEqual(b['service.instance.id'], a1['service.instance.id'], 'another node is another instance');
  assert.equal(b['host.name'], 'ntfl-node-b');
  // the library's default: the downward API's node name
  assert.equal(agentResource(VERSION, {}, { K8S_NODE_NAME: 'n9' })['host.name'], 'n9');
  // no metric is sent without data points
  for (const g of rx.got.filter((r) => r.path === '/v1/metrics')) {
    const rm = (g.body.resourceMetrics as { scopeMetrics: { metrics: Record<string, { dataPoints?: unknown[] }>[] }[] }[])[0];
    for (const m of rm.scopeMetrics[0].metrics) {
      const data = (m.sum ?? m.gauge ?? m.histogram) as { dataPoints?: unknown[] };
      assert.ok((data.dataPoints ?? []).length > 0, `${String(m.name)} was sent with no data points`);
    }
  }
});

test('serve --otlp-logs: UDP socket events are log records with network.transport udp', async () => {
  const rx = await receiver();
  const sink = await closedPort('127.0.0.1');
  const served = await startServe(['--listen', '127.0.0.1:0', '--otlp', `http://127.0.0.1:${rx.port}`, '--otlp-logs', '-u', 'comm nt-udp'], env, children);
  const udp = spawn(process.execPath, [path.join(FIXTURES, 'udp-peer.js'), 'send', '127.0.0.1', String(sink), '10,20'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(udp);
  let out = '';
  udp.stdout!.on('data', (d) => (out += d));
  await once(udp, 'exit');
  const { pid, port } = JSON.parse(out) as { pid: number; port: number };
  const mine = (): ReturnType<typeof logRecords> => logRecords(rx.got).filter((l) => l.attributes['process.pid'] === pid);
  await waitFor(() => mine().some((l) => l.attributes['nettrace.event'] === 'close'), 20000, 'the UDP close log record');
  const close = mine().find((l) => l.attributes['nettrace.event'] === 'close')!;
  assert.equal(close.attributes['network.transport'], 'udp');
  assert.equal(close.attributes['event.name'], 'nettrace.udp');
  assert.equal(close.attributes['network.type'], 'ipv4');
  assert.equal(close.attributes['network.local.port'], port);
  assert.equal(close.attributes['process.executable.name'], 'nt-udp');
  assert.equal(close.attributes['nettrace.tx_datagrams'], 2);
  assert.match(close.body, /^udp close /);
  assert.ok(mine().every((l) => l.attributes['network.transport'] === 'udp'));
  served.child.kill('SIGTERM');
  assert.equal((await served.done).code, 0);
});

test('a Collector that is down or answers errors: one line each, /metrics still served, the unsent points counted', async () => {
  const down = await closedPort('127.0.0.1');
  const failing = await receiver(400);
  for (const url of [`http://127.0.0.1:${down}`, `http://127.0.0.1:${failing.port}`]) {
    const served = await startServe(['--listen', '127.0.0.1:0', '--otlp', url, 'dport = :1'], env, children);
    let failed = 0;
    const end = Date.now() + 20000;
    while (Date.now() < end) {
      failed = valueOf(await scrape(served.port), 'nettrace_otlp_failed_metric_points_total');
      if (failed > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(failed > 0, `no failed points counted for ${url}: ${served.stderr()}`);
    // later failures add up (a refused connection is retried with backoff first), and the message is said once
    let later = failed;
    for (const end2 = Date.now() + 20000; later === failed && Date.now() < end2; ) {
      await new Promise((r) => setTimeout(r, 250));
      later = valueOf(await scrape(served.port), 'nettrace_otlp_failed_metric_points_total');
    }
    assert.ok(later > failed, 'later failures add up');
    const lines = served.stderr().split('\n').filter((l) => l.startsWith('nettrace: otlp:'));
    assert.equal(lines.length, 1, served.stderr());
    served.child.kill('SIGTERM');
    await served.done;
  }
  assert.ok(failing.got.length > 1, 'the failing collector was asked more than once');
});
