/**
 * Receive steering against the real kernel: two network namespaces joined by
 * a veth pair, a receiver pinned to CPU 0 and a sender pinned to CPU 1, bulk
 * TCP from one to the other, with RPS/RFS off and then on for the receiving
 * veth's queue.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FlowMonitor, Tracer } from '../../src';
import { SteeringMonitor } from '../../src/steering/steering-monitor';
import { SteeringFlow, SteeringReport } from '../../src/steering/types';
import { SteeringEvent } from '../../src/steering/types';
import { stillThere } from '../support/bpf-objects';
import { CLI, FIXTURES } from '../support/paths';

const ID = process.pid;
const SEND_NS = `nts-${ID}-s`;
const RECV_NS = `nts-${ID}-r`;
const SEND_IF = `nts${ID}s`;
const RECV_IF = `nts${ID}r`;
const SEND_ADDR = '10.211.0.1';
const RECV_ADDR = '10.211.0.2';
const RECV_CPU = 0;
const SEND_CPU = 1;
const BYTES = 256 << 20;
const SOCK_FLOW_ENTRIES = 'net.core.rps_sock_flow_entries';

let tracer: Tracer | undefined;
const children: ChildProcess[] = [];
let savedSockFlowEntries: string | undefined;

function sh(args: string[]): string {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
}

function inNs(ns: string, script: string): void {
  sh(['ip', 'netns', 'exec', ns, 'sh', '-c', script]);
}

function nsInode(ns: string): number {
  return fs.statSync(`/run/netns/${ns}`).ino;
}

/** rps_cpus and rps_flow_cnt of the receiving veth's only queue, and the global RFS table size. */
function steer(mask: string, flowCnt: number, sockFlowEntries: number): void {
  inNs(RECV_NS, `echo ${mask} > /sys/class/net/${RECV_IF}/queues/rx-0/rps_cpus && echo ${flowCnt} > /sys/class/net/${RECV_IF}/queues/rx-0/rps_flow_cnt`);
  sh(['sysctl', '-qw', `${SOCK_FLOW_ENTRIES}=${sockFlowEntries}`]);
}

before(() => {
  assert.ok(os.availableParallelism() >= 2, 'the steering test needs two CPUs');
  savedSockFlowEntries = sh(['sysctl', '-n', SOCK_FLOW_ENTRIES]).trim();
  sh(['ip', 'netns', 'add', SEND_NS]);
  sh(['ip', 'netns', 'add', RECV_NS]);
  sh(['ip', 'link', 'add', SEND_IF, 'netns', SEND_NS, 'type', 'veth', 'peer', 'name', RECV_IF, 'netns', RECV_NS]);
  inNs(SEND_NS, `ip addr add ${SEND_ADDR}/24 dev ${SEND_IF} && ip link set ${SEND_IF} up && ip link set lo up`);
  inNs(RECV_NS, `ip addr add ${RECV_ADDR}/24 dev ${RECV_IF} && ip link set ${RECV_IF} up && ip link set lo up`);
  // The receiver's ACKs cross the veth on the receiver's CPU; without this the sender's ACK-clocked
  // transmissions would run there too. Steering them to the sender's CPU keeps the sender on its side.
  inNs(SEND_NS, `echo ${1 << SEND_CPU} > /sys/class/net/${SEND_IF}/queues/rx-0/rps_cpus`);
  const ours = new Set([nsInode(RECV_NS), nsInode(SEND_NS)]);
  tracer = Tracer.start({ steering: true, filter: (c) => ours.has(c.netns) });
});

after(async () => {
  await tracer?.stop();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (savedSockFlowEntries !== undefined) sh(['sysctl', '-qw', `${SOCK_FLOW_ENTRIES}=${savedSockFlowEntries}`]);
  for (const ns of [SEND_NS, RECV_NS]) {
    try {
      sh(['ip', 'netns', 'del', ns]);
    } catch {
      // not created
    }
  }
});

type Line = Record<string, unknown>;

/** The JSON lines a child prints, one per next(); `{exit: code}` once it has exited. */
function jsonLines(child: ChildProcess): () => Promise<Line> {
  const queue: Line[] = [];
  const waiting: ((v: Line) => void)[] = [];
  const put = (v: Line): void => {
    const w = waiting.shift();
    if (w) w(v);
    else queue.push(v);
  };
  let buf = '';
  child.stdout!.on('data', (d) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      put(JSON.parse(buf.slice(0, nl)) as Line);
      buf = buf.slice(nl + 1);
    }
  });
  child.on('exit', (code) => put({ exit: code }));
  return () => new Promise<Line>((r) => (queue.length ? r(queue.shift()!) : waiting.push(r)));
}

/** test/kernel/fixtures/bulk.js pinned to `cpu` in `ns`. */
function pinned(ns: string, cpu: number, args: string[]): () => Promise<Line> {
  const child = spawn('ip', ['netns', 'exec', ns, 'taskset', '-c', String(cpu), process.execPath, path.join(FIXTURES, 'bulk.js'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return jsonLines(child);
}

/** BYTES from the sender to the receiver's `port`; resolves once the receiver has read them all. */
async function bulk(port: number): Promise<{ sinkPid: number; sourcePort: number }> {
  const sink = pinned(RECV_NS, RECV_CPU, ['sink', RECV_ADDR, String(port)]);
  const ready = await sink();
  assert.ok(Number(ready.pid) > 0, `sink listening: ${JSON.stringify(ready)}`);
  const source = pinned(SEND_NS, SEND_CPU, ['source', RECV_ADDR, String(port), String(BYTES)]);
  const connected = await source();
  assert.ok(Number(connected.localPort) > 0, `source connected: ${JSON.stringify(connected)}`);
  const done = await sink();
  assert.equal(done.bytes, BYTES, 'the sink read everything');
  return { sinkPid: Number(ready.pid), sourcePort: Number(connected.localPort) };
}

interface Run {
  flow: SteeringFlow;
  report: SteeringReport;
  events: SteeringEvent[];
  sinkPid: number;
}

/** A bulk transfer, then one steering sample (the closed flow's last report). */
async function transfer(monitor: SteeringMonitor, port: number): Promise<Run> {
  const { sinkPid, sourcePort } = await bulk(port);
  const { report, events } = monitor.sample(Date.now());
  const flow = report.flows.find((f) => f.netns === nsInode(RECV_NS) && f.sport === port && f.dport === sourcePort);
  assert.ok(flow, `a steering row for the receiving socket :${port}`);
  return { flow, report, events, sinkPid };
}

function share(counts: Record<number, number>, cpu: number): number {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return (counts[cpu] ?? 0) / total;
}

function queueConfig(report: SteeringReport) {
  const iface = report.config.interfaces.find((i) => i.netns === nsInode(RECV_NS) && i.name === RECV_IF);
  assert.ok(iface, `configuration of ${RECV_IF} read in its namespace`);
  assert.equal(iface.queues.length, 1);
  return iface.queues[0];
}

let off: Run;
let on: Run;

test('RPS off: segments are processed on the sender side CPU, far from the reader', async (t) => {
  steer('0', 0, 0);
  const monitor = new SteeringMonitor(new FlowMonitor(tracer!, { graceMs: 60000 }), { threshold: 0.5, holdMs: 0 });
  off = await transfer(monitor, 5201);
  const f = off.flow;
  t.diagnostic(`RPS off: locality ${f.locality}, processed on ${JSON.stringify(f.processed_on)}, read on ${JSON.stringify(f.read_on)}`);
  assert.equal(f.read_bytes, BYTES, 'every byte read was counted');
  assert.deepEqual(Object.keys(f.read_on), [String(RECV_CPU)], 'all reads ran on the receiver CPU');
  assert.equal(f.reader_cpu, RECV_CPU);
  assert.equal(f.reader_pid, off.sinkPid);
  assert.deepEqual([f.pid, f.comm], [off.sinkPid, 'nt-sink'], 'the owner (accept) joins from the flow table');
  assert.ok(f.segs >= BYTES / 65536, `segments counted (${f.segs})`);
  assert.ok(share(f.processed_on, SEND_CPU) > 0.8, `processed on the sender CPU: ${JSON.stringify(f.processed_on)}`);
  assert.ok(f.locality !== null && f.locality < 0.2, `locality ${f.locality}`);
  assert.equal(f.interface, RECV_IF);
  // the matrix: processed on the sender's CPU while read on the receiver's
  const g = off.report.processes.find((p) => p.key.startsWith(`${off.sinkPid}/`));
  assert.ok(g && g.matrix[SEND_CPU][RECV_CPU] > 0.8 * g.known_segs, `process matrix ${JSON.stringify(g?.matrix)}`);
  const iface = off.report.interfaces.find((i) => i.key === `${RECV_IF}@netns:${nsInode(RECV_NS)}`);
  assert.ok(iface && iface.locality !== null && iface.locality < 0.2, `interface ${JSON.stringify(iface)}`);
  // the configuration that explains it
  const q = queueConfig(off.report);
  assert.deepEqual([q.queue, q.rps_cpus, q.rps_flow_cnt, q.rps, q.rfs], ['rx-0', [], 0, false, false]);
  assert.equal(off.report.config.rps_sock_flow_entries, 0);
  // and the event: below 0.5 for (at least) the hold time of 0
  const ev = off.events.find((e) => e.sock === f.sock);
  assert.ok(ev, 'a steering event for the flow');
  assert.deepEqual([ev.type, ev.pid, ev.sport, ev.daddr, ev.threshold], ['steering', off.sinkPid, 5201, SEND_ADDR, 0.5]);
  assert.ok(ev.locality < 0.2 && share(ev.processed_on, SEND_CPU) > 0.8 && share(ev.read_on, RECV_CPU) === 1);
  // the flow table carries the same figures
  assert.equal(monitor.flows.table.get(f.sock)?.steering?.locality, f.locality);
});

test('RPS and RFS on the receiving queue: segments follow the reader, locality near 1', async (t) => {
  steer((1 << RECV_CPU).toString(16), 4096, 32768);
  const monitor = new SteeringMonitor(new FlowMonitor(tracer!, { graceMs: 60000 }), { threshold: 0.5, holdMs: 0 });
  on = await transfer(monitor, 5202);
  const f = on.flow;
  t.diagnostic(`RPS+RFS on: locality ${f.locality}, processed on ${JSON.stringify(f.processed_on)}, entered on ${JSON.stringify(f.entered_on)}`);
  assert.equal(f.read_bytes, BYTES);
  assert.ok(share(f.processed_on, RECV_CPU) > 0.95, `processed on the reader CPU: ${JSON.stringify(f.processed_on)}`);
  assert.ok(f.locality !== null && f.locality > 0.95, `locality ${f.locality}`);
  // before RPS moved them, the segments entered on the sender's CPU: both are shown
  assert.ok(f.entered_on && share(f.entered_on, SEND_CPU) > 0.5, `entered on ${JSON.stringify(f.entered_on)}`);
  assert.ok(f.locality - off.flow.locality! > 0.75, `locality rose from ${off.flow.locality} to ${f.locality}`);
  assert.equal(on.events.filter((e) => e.sock === f.sock).length, 0, 'no event above the threshold');
  const q = queueConfig(on.report);
  assert.deepEqual([q.rps_mask.replace(/^0+(?=.)/, ''), q.rps_cpus, q.rps_flow_cnt, q.rps, q.rfs], [(1 << RECV_CPU).toString(16), [RECV_CPU], 4096, true, true]);
  assert.equal(on.report.config.rps_sock_flow_entries, 32768);
});

test('nettrace steering --json: the flow, its process and interface, and the configuration, from the CLI', async () => {
  const cli = spawn(process.execPath, [CLI, 'steering', '--json', '-i', '0.3', '--below', '0.9', '--for', '0', 'sport = :5203'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(cli);
  let err = '';
  cli.stderr!.on('data', (d) => (err += d));
  const next = jsonLines(cli);
  assert.equal((await next()).type, 'report', `the first report once attached (${err})`);
  const { sinkPid } = await bulk(5203);
  let row: SteeringFlow | undefined;
  let report: SteeringReport | undefined;
  while (!row || row.read_bytes < BYTES) {
    const line = await next();
    assert.ok(!('exit' in line), `the CLI exited early: ${err}`);
    if (line.type !== 'report') continue;
    report = line as unknown as SteeringReport;
    row = report.flows.find((f) => f.sport === 5203);
  }
  cli.kill('SIGINT');
  let last = await next();
  while (!('exit' in last)) last = await next(); // a report may still be on its way
  assert.deepEqual(last, { exit: 0 });
  assert.equal(err, '');
  assert.deepEqual([row.pid, row.netns, row.interface, row.read_bytes], [sinkPid, nsInode(RECV_NS), RECV_IF, BYTES]);
  assert.ok(row.locality! > 0.95, `locality ${row.locality} (RPS and RFS still on)`);
  assert.deepEqual(report!.flows.map((f) => f.sport), [5203], 'the filter keeps only that flow');
  assert.equal(report!.processes[0].key, `${sinkPid}/nt-sink`);
  assert.equal(report!.interfaces[0].key, `${RECV_IF}@netns:${nsInode(RECV_NS)}`);
  assert.equal(report!.overall.matrix[RECV_CPU][RECV_CPU], report!.overall.local_segs);
  const q = queueConfig(report!);
  assert.deepEqual([q.rps_cpus, q.rps_flow_cnt, q.rfs], [[RECV_CPU], 4096, true]);
});

test('the steering hooks attach only on request, and are reported', async () => {
  const hook = tracer!.hooks.find((h) => h.name === 'steering');
  assert.equal(hook?.status, 'attached');
  assert.match(hook.detail, /^cgroup_skb\/ingress at the cgroup v2 root \/sys\/fs\/cgroup\S*, tp_btf\/sock_recv_length/);
  const plain = Tracer.start({ filter: () => false });
  try {
    assert.equal(plain.hooks.find((h) => h.name === 'steering'), undefined);
    assert.equal(plain.kernelIds.programs.length, tracer!.kernelIds.programs.length - 7, 'seven steering programs fewer');
    assert.throws(() => plain.steering(), { code: 'EINVAL', message: 'steering was not enabled when the tracer started' });
  } finally {
    await plain.stop();
  }
});

test('stop() detaches every steering program, the cgroup attachment included', async () => {
  const { programs, links } = tracer!.kernelIds;
  const ids = { programs, links };
  await tracer!.stop();
  assert.throws(() => tracer!.steering(), { code: 'EINVAL', message: 'the tracer is stopped' });
  for (let i = 0; i < 50 && stillThere(ids).programs.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(stillThere(ids), { programs: [], links: [] });
  const cgroupLinks = JSON.parse(sh(['bpftool', '-j', 'cgroup', 'show', '/sys/fs/cgroup/unified']).trim() || '[]') as { id: number }[];
  assert.ok(!cgroupLinks.some((p) => ids.programs.includes(p.id)), 'nothing of ours left on the cgroup root');
});
