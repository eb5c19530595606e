/**
 * A fleet on real engines: three network namespaces stand for three nodes, each
 * with its own servers and clients and its own `nettrace serve --netns X --node X
 * --otlp`, all pushing to one real OpenTelemetry Collector (built by
 * scripts/otelcol/build.sh from the upstream modules). The real Prometheus
 * scrapes the Collector's Prometheus exporter; the Collector also forwards
 * everything over OTLP/HTTP to a receiver here, which decodes it with the
 * official protos. Per node and summed over nodes, PromQL gives exactly what
 * each node did, and the Grafana dashboard's every query returns series.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, ROOT } from '../support/paths';
import { Exchange, expectedCounts, peerClient, peerServer } from '../support/peer';
import { get, startServe } from '../support/serve';
import { closedPort } from '../support/sockets';
import { makeNetns, removeNetns } from '../support/netns';
import { closeReceivers, logRecords, points, receiver } from '../support/otlp-receiver';

const PROMETHEUS = '/usr/bin/prometheus';
const NODES: Record<string, Exchange> = {
  'ntfl-a': { ok: 3, resets: 1, refused: 2, send: 300, reply: 500 },
  'ntfl-b': { ok: 5, resets: 0, refused: 1, send: 40, reply: 4000 },
  'ntfl-c': { ok: 1, resets: 2, refused: 3, send: 7000, reply: 90 },
};
const children: ChildProcess[] = [];
const dirs: string[] = [];
after(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  closeReceivers();
  Object.keys(NODES).forEach(removeNetns);
  dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

/** A child whose stderr is kept, and a wait that fails with it if the child exits first. */
function start(cmd: string, args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  return { child, log: () => log };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, watched: { child: ChildProcess; log: () => string }[], ms = 60000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    for (const w of watched) if (w.child.exitCode !== null) throw new Error(`${w.child.spawnfile} exited ${w.child.exitCode}: ${w.log()}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(port: number, promql: string): Promise<Series[]> {
  const r = await get(port, `/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (r.status !== 200) throw new Error(`query ${promql}: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { data: { result: Series[] } }).data.result;
}

/** One UDP socket's life in namespace `ns` (nt-udp sends two datagrams to a closed port and closes). */
async function udpIn(ns: string): Promise<number> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(FIXTURES, 'udp-peer.js'), 'send', '127.0.0.1', '9', '10,20'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await once(child, 'exit');
  return (JSON.parse(out) as { pid: number }).pid;
}

test('three nodes, three agents, one real Collector, the real Prometheus: exact counts per node and in sum, logs with their attributes, ratios as doubles', async () => {
  assert.ok(fs.existsSync(PROMETHEUS), `${PROMETHEUS} is missing: scripts/setup.sh --test installs it`);
  // built once by scripts/setup.sh --test; cached outside the repository
  const otelcol = execFileSync('bash', [path.join(ROOT, 'scripts', 'otelcol', 'build.sh')], { encoding: 'utf8' }).trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntfl-fleet-'));
  dirs.push(dir);
  const forward = await receiver();
  const [otlpPort, exporterPort, promPort] = [await closedPort('127.0.0.1'), await closedPort('127.0.0.1'), await closedPort('127.0.0.1')];
  fs.writeFileSync(
    path.join(dir, 'otelcol.yaml'),
    `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlpPort}
exporters:
  debug:
    verbosity: basic
  otlp_http:
    endpoint: http://127.0.0.1:${forward.port}
    retry_on_failure:
      enabled: false
  prometheus:
    endpoint: 127.0.0.1:${exporterPort}
    resource_to_telemetry_conversion:
      enabled: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus, otlp_http, debug]
    logs:
      receivers: [otlp]
      exporters: [otlp_http, debug]
`,
  );
  const collector = start(otelcol, [`--config=${path.join(dir, 'otelcol.yaml')}`]);
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: otelcol
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:${exporterPort}']
`,
  );
  const prom = start(PROMETHEUS, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--log.level=warn',
  ]);
  const watched = [collector, prom];
  await until('prometheus to be ready', async () => ((await get(promPort, '/-/ready')).status === 200 ? true : undefined), watched);

  const env = { ...process.env, OTEL_METRIC_EXPORT_INTERVAL: '500' };
  const agents = [];
  const udpPids: Record<string, number> = {};
  for (const [ns, x] of Object.entries(NODES)) {
    makeNetns(ns);
    const extra = ns === 'ntfl-a' ? ['--steering'] : [];
    agents.push(await startServe(['--listen', '127.0.0.1:0', '--netns', ns, '--node', ns, '--otlp', `http://127.0.0.1:${otlpPort}`, '--otlp-logs', ...extra], env, children));
    const peer = await peerServer('127.0.0.1', x, children, ns);
    await peerClient('127.0.0.1', peer.port, 9, x, undefined, ns);
    udpPids[ns] = await udpIn(ns);
  }

  // PromQL per node and over all nodes equals what each node did; nothing of one node shows under another
  const checks: [string, number][] = [];
  const total = (f: (x: Exchange) => number): number => Object.values(NODES).reduce((s, x) => s + f(x), 0);
  for (const [ns, x] of Object.entries(NODES)) {
    const want = expectedCounts(x);
    for (const [n, l, v] of want.client) checks.push([`sum(${n}{host_name="${ns}",comm="nt-mclient"${Object.entries(l).map(([k, w]) => `,${k}="${w}"`).join('')}})`, v]);
    for (const [n, l, v] of want.server) checks.push([`sum(${n}{host_name="${ns}",comm="nt-mserver"${Object.entries(l).map(([k, w]) => `,${k}="${w}"`).join('')}})`, v]);
    checks.push([`sum(nettrace_tcp_connects_total{host_name="${ns}"})`, x.ok + x.resets + x.refused]);
    // both ends of the TCP exchanges, and the UDP socket's two datagrams
    checks.push([`sum(nettrace_process_bytes_total{host_name="${ns}"})`, 2 * (x.ok + x.resets) * (x.send + x.reply) + 30]);
    checks.push([`sum(nettrace_process_bytes_total{host_name="${ns}",comm="nt-udp",direction="tx"})`, 30]);
    checks.push([`sum(nettrace_udp_datagrams_total{host_name="${ns}",comm="nt-udp",direction="tx"})`, 2]);
  }
  checks.push(['sum(nettrace_tcp_connects_total{result="refused"})', total((x) => x.refused)]);
  checks.push(['sum(nettrace_tcp_resets_total{comm="nt-mclient"})', total((x) => x.resets)]);
  checks.push(['sum(nettrace_tcp_accepts_total)', total((x) => x.ok + x.resets)]);
  checks.push(['sum(nettrace_process_bytes_total{direction="tx"})', total((x) => (x.ok + x.resets) * (x.send + x.reply) + 30)]);
  // each agent its own instance: three series of its own records counter, three target_info with their host.name
  checks.push(['count(count by (instance) (nettrace_records_total))', 3]);
  checks.push([`count(target_info{host_name=~"ntfl-a|ntfl-b|ntfl-c"})`, 3]);
  let last: string[] = [];
  await until(
    'the counts in Prometheus',
    async () => {
      // no series is 0: a counter that never counted has none (b made no resets)
      const got = await Promise.all(checks.map(async ([q]) => Number((await query(promPort, q))[0]?.value[1] ?? 0)));
      last = checks.map(([q, v], i) => `${q} = ${got[i]} (want ${v})`).filter((_, i) => got[i] !== checks[i][1]);
      return last.length === 0 ? true : undefined;
    },
    watched,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${last.join('\n')}`);
  });

  // the log records reached the Collector with their attributes and their node
  const logs = logRecords(forward.got);
  for (const [ns, x] of Object.entries(NODES)) {
    const mine = logs.filter((l) => l.resource['host.name'] === ns);
    const connects = mine.filter((l) => l.attributes['event.name'] === 'nettrace.connect' && l.attributes['process.executable.name'] === 'nt-mclient');
    assert.equal(connects.length, x.ok + x.resets + x.refused, `${ns} connect records`);
    assert.equal(connects.filter((l) => l.attributes['nettrace.result'] === 'refused' && l.attributes['network.peer.port'] === 9).length, x.refused);
    assert.ok(connects.every((l) => l.attributes['network.transport'] === 'tcp' && l.attributes['network.type'] === 'ipv4' && l.attributes['network.peer.address'] === '127.0.0.1'));
    const udp = mine.filter((l) => l.attributes['process.pid'] === udpPids[ns]);
    assert.deepEqual(udp.map((l) => [l.attributes['network.transport'], l.attributes['nettrace.event']]).sort(), [['udp', 'close'], ['udp', 'open']], `${ns} UDP records`);
    assert.equal(mine.filter((l) => l.attributes['event.name'] === 'nettrace.accept').length, x.ok + x.resets, `${ns} accept records`);
  }
  assert.equal(logs.filter((l) => !Object.keys(NODES).includes(String(l.resource['host.name']))).length, 0, 'no records from elsewhere');

  // every metric kept its value type through the Collector: seconds and ratios as doubles, counts as integers
  const forwarded = points(forward.got);
  const locality = forwarded.filter((p) => p.metric === 'nettrace_steering_locality_ratio');
  assert.ok(locality.length > 0 && locality.every((p) => p.field === 'asDouble'), 'locality arrives as a double');
  const doubles = ['nettrace_steering_locality_ratio', 'process_cpu_seconds', 'process_start_time_seconds'];
  for (const p of forwarded) {
    if (p.field !== 'count') assert.equal(p.field, doubles.includes(p.metric) ? 'asDouble' : 'asInt', `${p.metric} ${p.field}`);
  }
  assert.deepEqual(doubles.filter((d) => !forwarded.some((p) => p.metric === d)), [], 'every double was sent');

  // the Grafana dashboard: every panel's query returns series from this Prometheus
  const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, 'deploy', 'grafana', 'nettrace.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr.replace(/\$__rate_interval/g, '1m').replace(/\$node/g, '.*')] as const));
  assert.ok(exprs.length >= 6, 'the dashboard has its panels');
  const empty: string[] = [];
  await until(
    "every dashboard panel's series",
    async () => {
      empty.length = 0;
      for (const [title, e] of exprs) if ((await query(promPort, e)).length === 0) empty.push(`${title}: ${e}`);
      return empty.length === 0 ? true : undefined;
    },
    watched,
    20000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${empty.join('\n')}`);
  });

  for (const a of agents) a.child.kill('SIGTERM');
  for (const a of agents) assert.equal((await a.done).code, 0, a.stderr());
  prom.child.kill('SIGTERM');
  collector.child.kill('SIGTERM');
  await Promise.all([once(prom.child, 'exit'), once(collector.child, 'exit')]);
});
