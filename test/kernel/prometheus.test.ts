/**
 * A real Prometheus (Debian's package) scrapes `nettrace serve` on loopback
 * every second; the connection counts this test produces come back through
 * Prometheus's query API.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { heldBpf, stillThere } from '../support/bpf-objects';
import { Exchange, expectedCounts, peerClient, peerServer } from '../support/peer';
import { get, startServe } from '../support/serve';
import { closedPort } from '../support/sockets';

const PROMETHEUS = '/usr/bin/prometheus';
const children: ChildProcess[] = [];
const dirs: string[] = [];
after(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

async function query(port: number, promql: string): Promise<number | undefined> {
  const r = await get(port, `/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (r.status !== 200) throw new Error(`query ${promql}: ${r.status} ${r.body}`);
  const body = JSON.parse(r.body) as { data: { result: { value: [number, string] }[] } };
  const first = body.data.result[0];
  return first ? Number(first.value[1]) : undefined;
}

function selector(name: string, labels: Record<string, string>): string {
  return `sum(${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}})`;
}

test('Prometheus scrapes nettrace serve and its query API returns the connections this test made', async () => {
  assert.ok(fs.existsSync(PROMETHEUS), `${PROMETHEUS} is missing: apt-get install prometheus (.ci/run does)`);
  assert.match(execFileSync(PROMETHEUS, ['--version'], { encoding: 'utf8' }), /prometheus, version 2\./);
  const x: Exchange = { ok: 6, resets: 2, refused: 3, send: 500, reply: 700 };
  const peer = await peerServer('127.0.0.1', x, children);
  const refusedPort = await closedPort('127.0.0.1');
  const served = await startServe(
    ['--listen', '127.0.0.1:0', `sport = :${peer.port} or dport = :${peer.port} or dport = :${refusedPort}`],
    process.env,
    children,
  );
  const progs = heldBpf(served.child.pid!).programs;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-prom-'));
  dirs.push(dir);
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: nettrace',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${served.port}']`,
      '',
    ].join('\n'),
  );
  const promPort = await closedPort('127.0.0.1');
  const prom = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(prom);
  let promLog = '';
  prom.stderr!.on('data', (d) => (promLog += d));
  const promExit = once(prom, 'exit');

  const until = async <T>(what: string, fn: () => Promise<T | undefined>): Promise<T> => {
    const end = Date.now() + 60000;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v !== undefined) return v;
      if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}: ${promLog}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; prometheus said: ${promLog}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  await until('prometheus to be ready', async () => ((await get(promPort, '/-/ready')).status === 200 ? true : undefined));
  // the target is up: Prometheus has scraped nettrace at least once
  await until('the nettrace target to be up', async () => ((await query(promPort, 'up{job="nettrace"}')) === 1 ? true : undefined));

  await peerClient('127.0.0.1', peer.port, refusedPort, x);
  const want = expectedCounts(x);
  const checks = [
    ...want.client.map(([n, l, v]) => [selector(n, { ...l, comm: 'nt-mclient' }), v] as const),
    ...want.server.map(([n, l, v]) => [selector(n, { ...l, comm: 'nt-mserver' }), v] as const),
    ['sum(nettrace_tcp_rtt_seconds_count{job="nettrace"})', 2 * (x.ok + x.resets)] as const,
  ];
  let last: string[] = [];
  await until('the counts in Prometheus', async () => {
    const got = await Promise.all(checks.map(([q]) => query(promPort, q)));
    last = checks.map(([q, v], i) => `${q} = ${got[i]} (want ${v})`);
    return checks.every(([, v], i) => got[i] === v) ? true : undefined;
  }).catch((e: Error) => {
    throw new Error(`${e.message}\n${last.join('\n')}`);
  });
  // a histogram quantile over the RTTs works as dashboards use it
  const p50 = await query(promPort, 'histogram_quantile(0.5, sum by (le) (nettrace_tcp_rtt_seconds_bucket))');
  assert.ok(p50 !== undefined && p50 > 0 && p50 <= 10, `median RTT ${p50}`);

  prom.kill('SIGTERM');
  await promExit;
  served.child.kill('SIGTERM');
  const r = await served.done;
  peer.child.kill('SIGTERM');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(stillThere({ programs: progs, links: [] }).programs, []);
});
