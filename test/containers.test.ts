/**
 * Containers and services against the real kernel: cgroups made under the cgroup v2 root the way
 * each runtime names them (systemd's and cgroupfs's drivers), a process moved into each before it
 * opens its sockets, and every flow held against the cgroup it was made in; the kernel filter is
 * held against records of the other cgroups.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Flow, FlowMonitor, NettraceMetrics, Tracer } from '../src';
import { classifyCgroup } from '../src/flows/cgroup-names';
import { cgroup2Root, CgroupResolver } from '../src/flows/cgroups';
import { Kind } from '../src/layout';
import { newFlow } from '../src/flows/flow';
import { flowSnapshot } from '../src/flows/rollup';
import { decodeAll, encodeItems } from '../src/proto/stream';
import { buildModel } from '../src/cli/commands/top/view-model';
import { applyKey, initialUi } from '../src/cli/commands/top/ui';
import { paneData, paneTitleOf } from '../src/cli/commands/top/panes';
import { CLI, FIXTURES, waitFor } from './helpers';

const ROOT = cgroup2Root()!;
const TOP = `ntnat${process.pid % 100000}`;
const hex = (c: string): string => c.repeat(64);
const POD = '1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d';

/** Where each runtime puts a container or service, below our own top cgroup. */
const PLACES = {
  docker: `system.slice/docker-${hex('a')}.scope`,
  containerd: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${hex('b')}.scope`,
  crio: `kubepods/besteffort/pod${POD}/${hex('c')}`,
  podman: `machine.slice/libpod-${hex('d')}.scope`,
  service: 'system.slice/ntnat-web.service',
  dockerfs: `docker/${hex('e')}`,
} as const;
type Place = keyof typeof PLACES;

const children: ChildProcess[] = [];
const made: string[] = [];

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  // deepest first: a cgroup goes only once it has no children and no processes
  for (const dir of made.sort((a, b) => b.length - a.length)) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // not made, or already gone
    }
  }
});

function cgroupDir(place: Place): string {
  const dir = path.join(ROOT, TOP, PLACES[place]);
  let d = dir;
  while (d !== ROOT) {
    made.push(d);
    d = path.dirname(d);
  }
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** test/fixtures/holder.js started inside the cgroup (the shell moves itself there, then becomes the holder). */
function holderIn(dir: string): Promise<{ pid: number; port: number; clientPort: number }> {
  return fixtureIn<{ pid: number; port: number; clientPort: number }>(dir, 'holder.js');
}

/** A fixture started inside the cgroup; its first line of output. */
async function fixtureIn<T>(dir: string, script: string, ...args: string[]): Promise<T> {
  const child = spawn('sh', ['-c', `echo $$ > "$1/cgroup.procs" && shift && exec "$@"`, 'sh', dir, process.execPath, path.join(FIXTURES, script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('\n') || child.exitCode !== null, 20000, `${script} in ${dir}`);
  assert.equal(child.exitCode, null, `${script} in ${dir} ended early`);
  return JSON.parse(out.split('\n')[0]) as T;
}

test('each runtime\'s cgroup names say which container, pod and unit they hold', () => {
  const c = (p: string) => {
    const { runtime, id, unit, pod_uid, qos, name } = classifyCgroup(p);
    return { runtime, id, unit, pod_uid, qos, name };
  };
  assert.deepEqual(c(`/system.slice/docker-${hex('a')}.scope`), { runtime: 'docker', id: hex('a'), unit: `docker-${hex('a')}.scope`, pod_uid: null, qos: null, name: 'aaaaaaaaaaaa' });
  assert.deepEqual(c(`/docker/${hex('e')}`), { runtime: 'docker', id: hex('e'), unit: null, pod_uid: null, qos: null, name: 'eeeeeeeeeeee' });
  assert.deepEqual(c(`/${PLACES.containerd}`), { runtime: 'containerd', id: hex('b'), unit: `cri-containerd-${hex('b')}.scope`, pod_uid: POD, qos: 'burstable', name: 'bbbbbbbbbbbb' });
  assert.deepEqual(c(`/kubepods.slice/kubepods-pod${POD.replace(/-/g, '_')}.slice/crio-${hex('c')}.scope`), { runtime: 'crio', id: hex('c'), unit: `crio-${hex('c')}.scope`, pod_uid: POD, qos: 'guaranteed', name: 'cccccccccccc' });
  assert.deepEqual(c(`/kubepods/besteffort/pod${POD}/${hex('c')}`), { runtime: 'containerd', id: hex('c'), unit: null, pod_uid: POD, qos: 'besteffort', name: 'cccccccccccc' });
  assert.deepEqual(c(`/kubepods/pod${POD}`), { runtime: null, id: null, unit: null, pod_uid: POD, qos: 'guaranteed', name: `/kubepods/pod${POD}` });
  assert.deepEqual(c(`/machine.slice/libpod-${hex('d')}.scope/container`), { runtime: 'podman', id: hex('d'), unit: `libpod-${hex('d')}.scope`, pod_uid: null, qos: null, name: 'dddddddddddd' });
  // conmon's scope holds the monitor, not the container
  assert.deepEqual(c(`/machine.slice/libpod-conmon-${hex('d')}.scope`), { runtime: null, id: null, unit: `libpod-conmon-${hex('d')}.scope`, pod_uid: null, qos: null, name: `libpod-conmon-${hex('d')}.scope` });
  assert.deepEqual(c('/user.slice/user-1000.slice/user@1000.service/app.slice/ssh-agent.service'), { runtime: null, id: null, unit: 'ssh-agent.service', pod_uid: null, qos: null, name: 'ssh-agent.service' });
  assert.deepEqual(c('/'), { runtime: null, id: null, unit: null, pod_uid: null, qos: null, name: '/' });
});

test('flows of processes in each runtime\'s cgroup name that container, pod or unit; --container and --unit pick them', async () => {
  const places = Object.keys(PLACES) as Place[];
  const dirs = new Map(places.map((p) => [p, cgroupDir(p)]));
  const tracer = Tracer.start();
  const monitor = new FlowMonitor(tracer, {}, undefined, { containers: new CgroupResolver() });
  try {
    const holders = new Map<Place, { pid: number; port: number; clientPort: number }>();
    for (const p of places) holders.set(p, await holderIn(dirs.get(p)!));
    let flows: Flow[] = [];
    await waitFor(
      () => {
        monitor.refresh();
        const pids = new Set([...holders.values()].map((h) => h.pid));
        flows = monitor.table.flows().filter((f) => f.pid !== null && pids.has(f.pid) && f.proto === 'tcp');
        return flows.length === places.length * 3 && flows.every((f) => f.container !== null);
      },
      20000,
      'three flows of each holder, each with its container',
    );
    for (const p of places) {
      const h = holders.get(p)!;
      const mine = flows.filter((f) => f.pid === h.pid);
      const id = fs.statSync(dirs.get(p)!).ino;
      const want = classifyCgroup(`/${TOP}/${PLACES[p]}`);
      assert.equal(mine.length, 3, `${p}: listener, client and accepted`);
      for (const f of mine) {
        assert.equal(f.cgroup, id, `${p}: the kernel's cgroup id is the directory's inode`);
        assert.deepEqual(f.container, want, p);
      }
    }
    const by = (p: Place) => flows.find((f) => f.pid === holders.get(p)!.pid)!.container!;
    assert.deepEqual([by('docker').runtime, by('docker').id], ['docker', hex('a')]);
    assert.deepEqual([by('containerd').runtime, by('containerd').pod_uid, by('containerd').qos], ['containerd', POD, 'burstable']);
    assert.deepEqual([by('crio').pod_uid, by('crio').qos, by('crio').id], [POD, 'besteffort', hex('c')]);
    assert.deepEqual([by('podman').runtime, by('service').unit, by('service').runtime], ['podman', 'ntnat-web.service', null]);
    assert.equal(by('dockerfs').path, `/${TOP}/docker/${hex('e')}`);

    // the CLI's filters: only the named container's or unit's sockets
    const listed = (...args: string[]) =>
      execFileSync(process.execPath, [CLI, 'flows', '-a', '--json', '-t', ...args], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Flow);
    const inDocker = listed('--container', 'aaaaaaaaaaaa');
    assert.deepEqual([...new Set(inDocker.map((f) => f.pid))], [holders.get('docker')!.pid]);
    assert.equal(inDocker.length, 3);
    assert.equal(inDocker[0].container?.id, hex('a'));
    const inService = listed('--unit', 'ntnat-web');
    assert.deepEqual([...new Set(inService.map((f) => f.pid))], [holders.get('service')!.pid]);
    const text = execFileSync(process.execPath, [CLI, 'flows', '-t', '--container', 'dddd'], { encoding: 'utf8' });
    assert.match(text.split('\n')[0], /Container$/);
    assert.match(text, /dddddddddddd/);
    assert.doesNotMatch(text, /aaaaaaaaaaaa/);
  } finally {
    monitor.close();
    await tracer.stop();
  }
});

test('the kernel filter sends only records of the named cgroups', async () => {
  const inside = cgroupDir('docker');
  const outside = cgroupDir('service');
  const id = fs.statSync(inside).ino;
  const tracer = Tracer.start({ kernelFilter: { cgroups: [id] } });
  const seen: { kind: number; pid: number; cgroup: number }[] = [];
  tracer.onBatch((c) => {
    while (c.next()) if (c.hasOwner) seen.push({ kind: c.kind, pid: c.pid, cgroup: c.cgroup });
  });
  try {
    const out = await holderIn(outside);
    const inn = await holderIn(inside);
    const opens = () => seen.filter((r) => r.pid === inn.pid && (r.kind === Kind.Connect || r.kind === Kind.Accept));
    await waitFor(() => opens().length === 2, 20000, 'the connect and accept records of the holder inside');
    // the outside holder started first: had its records been sent, they would be in by now
    assert.equal(seen.filter((r) => r.pid === out.pid).length, 0);
    assert.ok(seen.every((r) => r.cgroup === id));
    assert.deepEqual(
      seen.filter((r) => r.pid === inn.pid && (r.kind === Kind.Connect || r.kind === Kind.Accept)).map((r) => r.kind).sort(),
      [Kind.Connect, Kind.Accept].sort(),
    );
  } finally {
    await tracer.stop();
  }
});

test('--container and --unit that name nothing are one-line usage errors', () => {
  const run = (...args: string[]) => {
    try {
      execFileSync(process.execPath, [CLI, 'flows', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { code: 0, err: '' };
    } catch (e) {
      const x = e as { status: number; stderr: string };
      return { code: x.status, err: x.stderr };
    }
  };
  const none = run('--container', 'ffff0000');
  assert.equal(none.code, 2);
  assert.match(none.err, /^nettrace: no cgroup of container ffff0000 under \S+ \(see nettrace --help\)\n$/);
  assert.match(run('--container', 'xyz').err, /--container takes a container id of 4 to 64 hex digits, not 'xyz'/);
  assert.match(run('--unit', 'ntnat-nothing-here').err, /no cgroup of unit ntnat-nothing-here/);
  assert.equal(run('--unit', 'a/b').err.split('\n').filter(Boolean).length, 1);
});

test('containers and translations round-trip through the protobuf stream, and top groups by container on c', () => {
  const base = newFlow({ sock: 7, netns: 4026531840, family: 6, saddr: '::ffff:a00:2', sport: 40000, daddr: '::ffff:a00:9', dport: 80 }, 1_700_000_000_000);
  const docker = classifyCgroup(`/system.slice/docker-${hex('a')}.scope`);
  const pod = classifyCgroup(`/${PLACES.containerd}`);
  const flows: Flow[] = [
    { ...base, state: 'ESTABLISHED', pid: 10, comm: 'a', cgroup: 5, container: docker, tx_bytes: 100, tx_rate: 10, nat: { saddr: '::ffff:a00:101', sport: 50000, daddr: '::ffff:a00:9', dport: 80, kind: 'snat' } },
    { ...base, sock: 8, sport: 40001, state: 'ESTABLISHED', pid: 11, comm: 'b', cgroup: 5, container: docker, rx_bytes: 50, rx_rate: 5 },
    { ...base, sock: 9, sport: 40002, state: 'ESTABLISHED', pid: 12, comm: 'c', cgroup: 6, container: pod, tx_bytes: 7, tx_rate: 1 },
  ];
  const snapshot = flowSnapshot(flows, 1_700_000_001_000);
  const header = { type: 'header', version: 1, producer: 'test', hostname: 'h', started: 1_700_000_000_000, command: 'flows' } as const;
  const { items, error } = decodeAll(encodeItems([header, snapshot]));
  assert.equal(error, undefined);
  const back = (items[1] as typeof snapshot).flows;
  assert.deepEqual(back.map((f) => [f.container, f.nat]), flows.map((f) => [f.container, f.nat]));

  const model = buildModel(flows, () => true, 'rate', Infinity, 'container');
  assert.deepEqual(
    model.containers.map((r) => [r.key, r.flows, r.tx_bytes, r.rx_bytes, r.tx_rate + r.rx_rate]),
    [['aaaaaaaaaaaa', 2, 100, 50, 15], ['bbbbbbbbbbbb', 1, 7, 0, 1]],
  );
  let ui = initialUi();
  ui = applyKey(ui, { type: 'char', ch: 'c' }).ui;
  assert.equal(ui.grouping, 'container');
  const shown = paneData(buildModel(flows, () => true, ui.sort, Infinity, ui.grouping), 'processes');
  assert.deepEqual(shown.columns.map((c) => c.title), ['Container', 'Conns', 'Up/s', 'Down/s', 'Sent', 'Recv']);
  assert.equal(paneTitleOf(buildModel(flows, () => true, ui.sort, Infinity, ui.grouping), 'processes'), 'Containers');
  assert.equal(applyKey(ui, { type: 'char', ch: 'c' }).ui.grouping, 'process');
});

test('the event stream with --container: only that container\'s records, and its close records name the container', async () => {
  const inside = cgroupDir('podman');
  const outside = cgroupDir('dockerfs');
  // the CLI writes its kernel objects' ids here once attached: the traffic starts after that
  const ids = path.join(os.tmpdir(), `${TOP}-ids.json`);
  fs.rmSync(ids, { force: true });
  const stream = spawn(process.execPath, [CLI, '--json', '--container', 'dddddddd'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NETTRACE_KERNEL_IDS: ids } });
  children.push(stream);
  const lines: string[] = [];
  let rest = '';
  stream.stdout!.on('data', (d) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  let err = '';
  stream.stderr!.on('data', (d) => (err += d));
  await waitFor(() => fs.existsSync(ids) || stream.exitCode !== null, 20000, 'the stream attached');
  fs.rmSync(ids, { force: true });
  assert.equal(stream.exitCode, null, err);
  const hIn = await holderIn(inside);
  const hOut = await holderIn(outside);
  const inPid = children.at(-2)!;
  await waitFor(() => lines.some((l) => l.includes('"connect"')), 20000, 'the connect record of the holder inside');
  inPid.kill('SIGKILL');
  children.at(-1)!.kill('SIGKILL');
  await waitFor(() => lines.filter((l) => JSON.parse(l).type === 'close').length === 2, 20000, 'the close records of its two connected sockets');
  stream.kill('SIGINT');
  const events = lines.map((l) => JSON.parse(l) as { type: string; pid: number | null; container?: { id: string | null; runtime: string | null } });
  assert.ok(events.every((e) => e.pid === hIn.pid), `only the container's records (not pid ${hOut.pid})`);
  const closes = events.filter((e) => e.type === 'close');
  assert.deepEqual(closes.map((e) => [e.container?.runtime, e.container?.id]), [['podman', hex('d')], ['podman', hex('d')]]);
});

test('the metrics count bytes per container or service, under the container label', async () => {
  const client = cgroupDir('docker');
  const server = cgroupDir('service');
  const port = 20000 + (process.pid % 10000);
  const tracer = Tracer.start({ kernelFilter: { ports: [port] } });
  const metrics = new NettraceMetrics(tracer, { refreshMs: 200 });
  try {
    await fixtureIn(server, 'nat-peer.js', 'server', String(port), '127.0.0.1');
    // one byte each way over TCP (held open), four each way in one UDP datagram and its echo
    await fixtureIn(client, 'nat-peer.js', 'client', String(port), '127.0.0.1');
    const bytes = (container: string, direction: string): number | undefined => {
      const family = metrics.families().find((f) => f.name === 'nettrace_container_bytes');
      const s = family?.series.find((x) => x.labels.container === container && x.labels.direction === direction);
      return s && 'value' in s ? s.value : undefined;
    };
    const want = [['aaaaaaaaaaaa', 'tx', 5], ['aaaaaaaaaaaa', 'rx', 5], ['ntnat-web.service', 'tx', 5], ['ntnat-web.service', 'rx', 5]] as const;
    await waitFor(() => want.every(([c, d, v]) => bytes(c, d) === v), 20000, 'five bytes each way per container').catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(want.map(([c, d]) => [c, d, bytes(c, d)]))}`);
    });
  } finally {
    metrics.close();
    await tracer.stop();
  }
});
