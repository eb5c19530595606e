/**
 * OTLP/HTTP protobuf: a receiver on loopback decodes what nettrace sends with
 * the official OTLP .proto definitions (as shipped in
 * @opentelemetry/otlp-grpc-exporter-base) and finds the metrics and log records
 * of the connections this test made.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { NettraceMetrics, OtlpSink, Tracer } from '../../src';
import { heldBpf, stillThere } from '../support/bpf-objects';
import { Exchange, expectedCounts, peerClient, peerServer } from '../support/peer';
import { startServe } from '../support/serve';
import { closedPort } from '../support/sockets';
import { waitFor } from '../support/wait';
import { Attrs, closeReceivers, latest, logRecords, points, receiver, Received } from '../support/otlp-receiver';

const children: ChildProcess[] = [];
after(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  closeReceivers();
});

function metricChecks(x: Exchange): [string, Attrs, number][] {
  const want = expectedCounts(x);
  const base = (n: string): string => n.replace(/_total$/, '');
  return [
    ...want.client.map(([n, l, v]): [string, Attrs, number] => [base(n), { ...l, comm: 'nt-mclient' }, v]),
    ...want.server.map(([n, l, v]): [string, Attrs, number] => [base(n), { ...l, comm: 'nt-mserver' }, v]),
    ['nettrace_tcp_rtt_seconds', {}, 2 * (x.ok + x.resets)],
  ];
}

async function waitForMetrics(got: Received[], checks: [string, Attrs, number][]): Promise<void> {
  const pending = (): string[] => checks.filter(([m, a, v]) => latest(got, m, a) !== v).map(([m, a, v]) => `${m}${JSON.stringify(a)}=${latest(got, m, a)} want ${v}`);
  await waitFor(() => pending().length === 0, 30000, 'the metrics over OTLP').catch((e: Error) => {
    throw new Error(`${e.message}: ${pending().join(', ')}`);
  });
}

test('serve --otlp: metrics and event logs over OTLP/HTTP protobuf, decoded with the official protos, honouring OTEL_* variables', async () => {
  const rx = await receiver();
  const x: Exchange = { ok: 4, resets: 2, refused: 3, send: 300, reply: 900 };
  const peer = await peerServer('127.0.0.1', x, children);
  const refusedPort = await closedPort('127.0.0.1');
  const env = {
    ...process.env,
    OTEL_METRIC_EXPORT_INTERVAL: '500',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-nettrace-test=otlp-42',
    OTEL_RESOURCE_ATTRIBUTES: 'k8s.node.name=node-a',
    // a signal's own endpoint wins over the --otlp base, as the specification has it
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `http://127.0.0.1:${rx.port}/custom/logs`,
  };
  const filter = `sport = :${peer.port} or dport = :${peer.port} or dport = :${refusedPort}`;
  const served = await startServe(['--listen', '127.0.0.1:0', '--otlp', `http://127.0.0.1:${rx.port}`, '--otlp-logs', filter], env, children);
  const progs = heldBpf(served.child.pid!).programs;
  await peerClient('127.0.0.1', peer.port, refusedPort, x);
  await waitForMetrics(rx.got, metricChecks(x));

  const request = rx.got.find((g) => g.path === '/v1/metrics')!;
  assert.equal(request.headers['content-type'], 'application/x-protobuf');
  assert.equal(request.headers['x-nettrace-test'], 'otlp-42', 'OTEL_EXPORTER_OTLP_HEADERS is honoured');
  const p = points([request])[0];
  assert.equal(p.resource['service.name'], 'nettrace');
  assert.equal(p.resource['k8s.node.name'], 'node-a', 'OTEL_RESOURCE_ATTRIBUTES is honoured');

  // connect, accept and close events as log records
  const want = (type: string, comm: string, extra: Attrs = {}): number =>
    logRecords(rx.got).filter(
      (l) => l.attributes['event.name'] === `nettrace.${type}` && l.attributes['process.executable.name'] === comm && Object.entries(extra).every(([k, v]) => l.attributes[k] === v),
    ).length;
  await waitFor(() => want('close', 'nt-mserver') === x.ok + x.resets, 30000, 'the close log records');
  assert.equal(want('connect', 'nt-mclient', { 'nettrace.result': 'ok', 'network.peer.port': peer.port }), x.ok + x.resets);
  assert.equal(want('connect', 'nt-mclient', { 'nettrace.result': 'refused', 'network.peer.port': refusedPort }), x.refused);
  assert.equal(want('accept', 'nt-mserver', { 'network.local.port': peer.port, 'network.peer.address': '127.0.0.1' }), x.ok + x.resets);
  assert.equal(want('close', 'nt-mclient', { 'nettrace.tx_bytes': x.send, 'nettrace.rx_bytes': x.reply }), x.ok + x.resets);
  assert.equal(logRecords(rx.got).filter((l) => /^state /.test(l.body)).length, 0, 'state transitions are not sent as logs');
  assert.deepEqual([...new Set(rx.got.map((g) => g.path))].sort(), ['/custom/logs', '/v1/metrics']);

  served.child.kill('SIGTERM');
  const r = await served.done;
  peer.child.kill('SIGTERM');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(stillThere({ programs: progs, links: [] }).programs, []);
});

test('OtlpSink as a library sink: a Tracer, its metrics and an explicit endpoint; shutdown sends the last export', async () => {
  const rx = await receiver();
  const x: Exchange = { ok: 2, resets: 1, refused: 1, send: 40, reply: 60 };
  const peer = await peerServer('127.0.0.1', x, children);
  const refusedPort = await closedPort('127.0.0.1');
  const tracer = Tracer.start({ kernelFilter: { ports: [peer.port, refusedPort] } });
  const metrics = new NettraceMetrics(tracer, { refreshMs: 200 });
  // a long interval: only shutdown's final export can deliver the counts
  const sink = OtlpSink.start(tracer, metrics, { endpoint: `http://127.0.0.1:${rx.port}/`, intervalMs: 3_600_000 });
  try {
    await peerClient('127.0.0.1', peer.port, refusedPort, x);
    await waitFor(() => metrics.families().some((f) => f.name === 'nettrace_tcp_accepts' && f.series.some((s) => s.labels.comm === 'nt-mserver' && 'value' in s && s.value === 3)), 20000, 'accepts');
    await new Promise((r) => setTimeout(r, 500)); // one more refresh folds the last bytes in
  } finally {
    await sink.shutdown();
    metrics.close();
    await tracer.stop();
    peer.child.kill('SIGTERM');
  }
  const checks = metricChecks(x);
  for (const [m, a, v] of checks) assert.equal(latest(rx.got, m, a), v, `${m} ${JSON.stringify(a)}`);
  assert.equal(rx.got.filter((g) => g.path.endsWith('/logs')).length, 0, 'no logs unless asked for');
});
