/**
 * The route each flow takes, against the real kernel: two network namespaces joined by two veth pairs,
 * a default route through one gateway and a specific route through the other, TCP flows from one
 * namespace to listeners in the other; every answer is held against what `ip route get` says there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Flow, FlowMonitor, Tracer } from '../../src';
import { RouteResolver, routeEach } from '../../src/flows/routes';
import { CLI, FIXTURES } from '../support/paths';
import { waitFor } from '../support/wait';

const TAG = `ntr${process.pid % 100000}`;
const A = `${TAG}-a`; // the clients' namespace
const B = `${TAG}-b`; // the listeners' namespace
const PORT = 20000 + (process.pid % 20000);
const SEND = 1000;
/** Behind B's default gateway, behind the specific route's gateway, and B's own end of the second link. */
const VIA_DEFAULT = '10.210.0.1';
const VIA_SPECIFIC = '10.220.0.1';
const DIRECT = '10.201.2.1';
/** Behind A's IPv6 default gateway (B's end of the first link). */
const V6_VIA = 'fd71:99::1';

const children: ChildProcess[] = [];
let tracer: Tracer | undefined;
let routes: RouteResolver | undefined;
let monitor: FlowMonitor | undefined;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev: string;
  prefsrc?: string;
  metric?: number;
  protocol?: string;
  scope?: string;
  table?: string;
}

/** `ip -j -d -n NS route get ADDR`: the kernel's own answer, to hold nettrace's against. */
function ipRouteGet(ns: string, addr: string): IpRoute {
  return (JSON.parse(ip('-j', '-d', '-n', ns, 'route', 'get', addr)) as IpRoute[])[0];
}

before(() => {
  for (const ns of [A, B]) {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  for (const link of [1, 2]) {
    ip('link', 'add', `${TAG}a${link}`, 'netns', A, 'type', 'veth', 'peer', 'name', `${TAG}b${link}`, 'netns', B);
    ip('-n', A, 'addr', 'add', `10.201.${link}.2/24`, 'dev', `${TAG}a${link}`);
    ip('-n', B, 'addr', 'add', `10.201.${link}.1/24`, 'dev', `${TAG}b${link}`);
    ip('-n', A, 'link', 'set', `${TAG}a${link}`, 'up');
    ip('-n', B, 'link', 'set', `${TAG}b${link}`, 'up');
  }
  ip('-n', B, 'addr', 'add', `${VIA_DEFAULT}/32`, 'dev', 'lo');
  ip('-n', B, 'addr', 'add', `${VIA_SPECIFIC}/32`, 'dev', 'lo');
  ip('-n', A, 'route', 'add', 'default', 'via', '10.201.1.1');
  ip('-n', A, 'addr', 'add', 'fd71:1::2/64', 'dev', `${TAG}a1`, 'nodad');
  ip('-n', B, 'addr', 'add', 'fd71:1::1/64', 'dev', `${TAG}b1`, 'nodad');
  ip('-n', B, 'addr', 'add', `${V6_VIA}/128`, 'dev', 'lo');
  ip('-n', A, '-6', 'route', 'add', 'default', 'via', 'fd71:1::1');
  ip('-n', A, 'route', 'add', '10.220.0.0/24', 'via', '10.201.2.1');
});

after(async () => {
  children.forEach((c) => c.kill('SIGKILL'));
  monitor?.close();
  routes?.close(); // its threads sit in the namespaces: leave them before they are deleted
  await tracer?.stop();
  for (const ns of [A, B]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not created
    }
  }
});

/** Runs test/kernel/fixtures/route-peer.js in a namespace and returns its first line of output. */
async function peer<T>(ns: string, ...args: string[]): Promise<T> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(FIXTURES, 'route-peer.js'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('\n') || child.exitCode !== null, 20000, `route-peer ${args[0]} in ${ns}`);
  assert.equal(child.exitCode, null, `route-peer ${args.join(' ')} ended early`);
  return JSON.parse(out.split('\n')[0]) as T;
}

async function connections(pid: number, count: number): Promise<Flow[]> {
  let mine: Flow[] = [];
  await waitFor(
    () => {
      monitor!.refresh();
      mine = monitor!.table.flows().filter((f) => f.pid === pid && f.state === 'ESTABLISHED');
      return mine.length === count;
    },
    20000,
    `${count} established flows of pid ${pid}`,
  );
  await monitor!.routesSettled();
  assert.equal(monitor!.routeError, undefined);
  // flows are copies as of the read: read them again now that their routes are set
  const socks = new Set(mine.map((f) => f.sock));
  return monitor!.table.flows().filter((f) => socks.has(f.sock));
}

function assertRouteOf(f: Flow, ns: string): void {
  const want = ipRouteGet(ns, f.daddr);
  assert.deepEqual(
    { ifname: f.ifname, gateway: f.gateway, route_src: f.route_src },
    { ifname: want.dev, gateway: want.gateway ?? null, route_src: want.prefsrc ?? null },
    `route of ${f.saddr}:${f.sport} > ${f.daddr}:${f.dport} in ${ns}`,
  );
}

function runCli(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], { encoding: 'utf8' });
}

test('flows in another namespace carry the interface, gateway, source and table ip route get gives there', async () => {
  tracer = Tracer.start({ kernelFilter: { ports: [PORT] } });
  routes = new RouteResolver();
  monitor = new FlowMonitor(tracer, {}, routes);
  const server = await peer<{ pid: number }>(B, 'server', String(PORT), String(SEND));
  const client = await peer<{ pid: number; ports: Record<string, number> }>(A, 'client', String(PORT), String(SEND), VIA_DEFAULT, VIA_SPECIFIC, DIRECT, V6_VIA);

  const flows = await connections(client.pid, 4);
  const to = (addr: string) => flows.find((f) => f.daddr === addr)!;
  assert.deepEqual(flows.map((f) => f.daddr).sort(), [DIRECT, VIA_DEFAULT, VIA_SPECIFIC, V6_VIA]);
  for (const f of flows) {
    assert.equal(f.sport, client.ports[f.daddr]);
    assertRouteOf(f, A);
    assert.equal(f.route_table, ipRouteGet(A, f.daddr).table ?? 'main');
  }
  // what the topology means, so a wrong topology cannot pass by agreeing with itself
  assert.deepEqual([to(VIA_DEFAULT).ifname, to(VIA_DEFAULT).gateway, to(VIA_DEFAULT).route_src], [`${TAG}a1`, '10.201.1.1', '10.201.1.2']);
  assert.deepEqual([to(VIA_SPECIFIC).ifname, to(VIA_SPECIFIC).gateway, to(VIA_SPECIFIC).route_src], [`${TAG}a2`, '10.201.2.1', '10.201.2.2']);
  assert.deepEqual([to(DIRECT).ifname, to(DIRECT).gateway, to(DIRECT).route_src], [`${TAG}a2`, null, '10.201.2.2']);
  assert.deepEqual([to(V6_VIA).ifname, to(V6_VIA).gateway, to(V6_VIA).route_src], [`${TAG}a1`, 'fd71:1::1', 'fd71:1::2']);

  // the accepting side, in the other namespace, is routed there
  const accepted = await connections(server.pid, 4);
  for (const f of accepted) assertRouteOf(f, B);
  assert.deepEqual(accepted.map((f) => f.ifname).sort(), [`${TAG}b1`, `${TAG}b1`, `${TAG}b2`, `${TAG}b2`]);
  assert.equal(routes.stats().namespaces >= 2, true);

  // while nothing changes, look-ups are answered from the caches: the kernel is asked once per (namespace, destination)
  const cachedOnly = new RouteResolver();
  try {
    const ours = [...flows, ...accepted];
    for (let i = 0; i < 5; i++) {
      const copies = ours.map((f) => ({ ...f, ifname: null, gateway: null, route_src: null, route_table: null }));
      await cachedOnly.resolve(routeEach(copies));
      assert.deepEqual(copies.map((c) => c.ifname), ours.map((f) => f.ifname));
      assert.equal(cachedOnly.stats().kernelLookups, 7); // A: four destinations; B: the three client addresses
    }
  } finally {
    cachedOnly.close();
  }
});

test('after a route changes, new flows show the new route: the change notification emptied the cache', async () => {
  const before = ipRouteGet(A, VIA_SPECIFIC);
  assert.equal(before.dev, `${TAG}a2`);
  const changes = routesChanges();
  ip('-n', A, 'route', 'replace', '10.220.0.0/24', 'via', '10.201.1.1');
  const client = await peer<{ pid: number; ports: Record<string, number> }>(A, 'client', String(PORT), String(SEND), VIA_SPECIFIC);
  const asked = routes!.stats().kernelLookups;
  const [f] = await connections(client.pid, 1);
  assert.ok(routesChanges() > changes, 'the route change was noticed');
  assert.ok(routes!.stats().kernelLookups > asked, 'the kernel was asked again');
  assertRouteOf(f, A);
  assert.deepEqual([f.ifname, f.gateway, f.route_src], [`${TAG}a1`, '10.201.1.1', '10.201.1.2']);
});

function routesChanges(): number {
  return routes!.stats().changes;
}

test('a namespace whose flows have no living owner is entered through its ip netns name', async () => {
  const fresh = new RouteResolver();
  try {
    const orphan = { netns: fs.statSync(`/run/netns/${A}`).ino, daddr: VIA_DEFAULT, pid: null, state: 'TIME_WAIT', closed: null };
    const flow = { ...orphan, ifname: null, gateway: null, route_src: null, route_table: null };
    await fresh.resolve(routeEach([flow]));
    const want = ipRouteGet(A, VIA_DEFAULT);
    assert.deepEqual([flow.ifname, flow.gateway, flow.route_src], [want.dev, want.gateway, want.prefsrc]);
  } finally {
    fresh.close();
  }
});

test('nettrace route ADDR answers as ip route get does, with the flows that take that route', () => {
  for (const addr of [VIA_DEFAULT, VIA_SPECIFIC, DIRECT]) {
    const got = JSON.parse(runCli(A, 'route', addr, '--json')) as {
      dst: string;
      gateway: string | null;
      dev: string;
      prefsrc: string;
      route: { dst: string };
      flows: Flow[];
    };
    const want = ipRouteGet(A, addr);
    assert.deepEqual([got.dst, got.gateway, got.dev, got.prefsrc], [want.dst, want.gateway ?? null, want.dev, want.prefsrc]);
    const fib = (JSON.parse(ip('-j', '-n', A, 'route', 'get', 'fibmatch', addr)) as IpRoute[])[0];
    assert.equal(got.route.dst, fib.dst);
    // every flow of the namespace now to an address that this same FIB entry routes
    const expected = { [VIA_DEFAULT]: [VIA_DEFAULT], [VIA_SPECIFIC]: [VIA_SPECIFIC, VIA_SPECIFIC], [DIRECT]: [DIRECT] }[addr]!;
    assert.deepEqual(
      got.flows.filter((f) => f.dport === PORT).map((f) => f.daddr),
      expected,
      `flows taking ${fib.dst}`,
    );
  }
  const text = runCli(A, 'route', VIA_SPECIFIC);
  assert.match(text.split('\n')[0], new RegExp(`^${VIA_SPECIFIC.replace(/\./g, '\\.')} via 10\\.201\\.1\\.1 dev ${TAG}a1 table main src 10\\.201\\.1\\.2$`));
});

test('nettrace routes lists the main table as ip route does, with flows and bytes per route', () => {
  const got = runCli(A, 'routes', '-4', '--json')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { dst: string; gateway: string | null; dev: string; prefsrc: string | null; protocol: string; scope: string; flows: number; tx_bytes: number; rx_bytes: number });
  const want = JSON.parse(ip('-j', '-n', A, 'route')) as IpRoute[];
  assert.deepEqual(
    got.map((r) => [r.dst, r.gateway, r.dev, r.prefsrc]),
    want.map((r) => [r.dst, r.gateway ?? null, r.dev, r.prefsrc ?? null]),
  );
  for (const r of want) {
    const mine = got.find((g) => g.dst === r.dst)!;
    if (r.protocol) assert.equal(mine.protocol, r.protocol);
    if (r.scope) assert.equal(mine.scope, r.scope);
  }
  const traffic = Object.fromEntries(got.map((r) => [r.dst, [r.flows, r.rx_bytes]]));
  // four flows in all, each received one byte; only these routes carry them
  assert.deepEqual(traffic, { default: [1, 1], '10.201.1.0/24': [0, 0], '10.201.2.0/24': [1, 1], '10.220.0.0/24': [2, 2] });
  // bytes sent per route are the sum over the flows nettrace flows lists there (each sent SEND bytes; a socket
  // older than nettrace may count its SYN too, as nettrace flows does)
  const flows = runCli(A, 'flows', '--json', 'dport', '=', `:${PORT}`)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Flow);
  const sent = (addrs: string[]) => flows.filter((f) => addrs.includes(f.daddr)).reduce((n, f) => n + f.tx_bytes, 0);
  assert.deepEqual(
    got.map((r) => r.tx_bytes),
    got.map((r) => sent(r.dst === 'default' ? [VIA_DEFAULT] : r.dst === '10.201.2.0/24' ? [DIRECT] : r.dst === '10.220.0.0/24' ? [VIA_SPECIFIC] : [])),
  );
  for (const f of flows) assert.ok(f.tx_bytes >= SEND && f.tx_bytes <= SEND + 1, `${f.daddr}:${f.dport} sent ${f.tx_bytes}`);
  // nettrace flows run in the namespace carries each flow's route too
  assert.equal(flows.length, 5);
  for (const f of flows) assertRouteOf(f, A);
  const v6 = runCli(A, 'routes', '-6', '--json')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { dst: string; gateway: string | null; dev: string; metric: number | null; flows: number });
  const want6 = JSON.parse(ip('-j', '-6', '-n', A, 'route')) as IpRoute[];
  assert.deepEqual(
    v6.map((r) => [r.dst, r.gateway, r.dev, r.metric]),
    want6.map((r) => [r.dst, r.gateway ?? null, r.dev, r.metric ?? null]),
  );
  assert.equal(v6.find((r) => r.dst === 'default')!.flows, 1);
  const text = runCli(A, 'routes', '-4');
  assert.match(text, /^Destination\s+Gateway\s+Iface/);
  assert.match(text, new RegExp(`\\n10\\.220\\.0\\.0/24\\s+10\\.201\\.1\\.1\\s+${TAG}a1\\s.*\\s2\\s+2\\.0K\\s+2B\\n`));
});

test('a bad address is one line on stderr and exit 2', () => {
  for (const args of [['route', 'notanaddress'], ['route'], ['route', '10.0.0.300']]) {
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { status: number; stderr: string };
      status = err.status;
      stderr = err.stderr;
    }
    assert.equal(status, 2, args.join(' '));
    assert.equal(stderr.trim().split('\n').length, 1);
    assert.match(stderr, /^nettrace: /);
  }
});
