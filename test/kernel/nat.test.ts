/**
 * NAT per flow against the real kernel: three network namespaces (client, router, server) joined by
 * veth pairs; the router masquerades the client's subnet towards one of the server's addresses and
 * forwards a port of its own to the other (DNAT). nettrace runs in the router's namespace, as on a
 * container host. Every TCP and UDP flow, IPv4 and IPv6, is held against the tuples `conntrack -L`
 * shows there; flows through the router untranslated show none.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Flow } from '../../src';
import { CLI, FIXTURES } from '../support/paths';
import { waitFor } from '../support/wait';

const TAG = `ntnat${process.pid % 100000}`;
const C = `${TAG}-c`;
const R = `${TAG}-r`;
const S = `${TAG}-s`;
const PORT = 30000 + (process.pid % 10000);
const FWD = PORT + 10000;
/** The router's address on the client's side (where the port forward listens), and the server's two. */
const V4 = { router: '10.77.1.1', client: '10.77.1.2', gw: '10.77.2.1', server: '10.77.2.2', masq: '10.77.2.3' };
/** A service address the router's own processes reach through DNAT in OUTPUT, as kube-proxy makes a ClusterIP. */
const SERVICE = '10.77.2.9';
const V6 = { router: 'fd77:1::1', client: 'fd77:1::2', gw: 'fd77:2::1', server: 'fd77:2::2', masq: 'fd77:2::3' };

const children: ChildProcess[] = [];

function run(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}
const ip = (...args: string[]): string => run('ip', ...args);
const inNs = (ns: string, cmd: string, ...args: string[]): string => run('ip', 'netns', 'exec', ns, cmd, ...args);

before(() => {
  for (const ns of [C, R, S]) {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  ip('link', 'add', `${TAG}c`, 'netns', C, 'type', 'veth', 'peer', 'name', `${TAG}r1`, 'netns', R);
  ip('link', 'add', `${TAG}s`, 'netns', S, 'type', 'veth', 'peer', 'name', `${TAG}r2`, 'netns', R);
  const addr = (ns: string, dev: string, ...cidrs: string[]) => {
    for (const a of cidrs) ip('-n', ns, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
    ip('-n', ns, 'link', 'set', dev, 'up');
  };
  addr(C, `${TAG}c`, `${V4.client}/24`, `${V6.client}/64`);
  addr(R, `${TAG}r1`, `${V4.router}/24`, `${V6.router}/64`);
  addr(R, `${TAG}r2`, `${V4.gw}/24`, `${V6.gw}/64`);
  addr(S, `${TAG}s`, `${V4.server}/24`, `${V4.masq}/24`, `${V6.server}/64`, `${V6.masq}/64`);
  ip('-n', C, 'route', 'add', 'default', 'via', V4.router);
  ip('-n', C, '-6', 'route', 'add', 'default', 'via', V6.router);
  ip('-n', S, 'route', 'add', 'default', 'via', V4.gw);
  ip('-n', S, '-6', 'route', 'add', 'default', 'via', V6.gw);
  inNs(R, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
  for (const [tables, a] of [['iptables', V4], ['ip6tables', V6]] as const) {
    inNs(R, tables, '-t', 'nat', '-A', 'POSTROUTING', '-s', a === V4 ? '10.77.1.0/24' : 'fd77:1::/64', '-d', a.masq, '-j', 'MASQUERADE');
    for (const p of ['tcp', 'udp']) {
      const to = a === V4 ? `${a.server}:${PORT}` : `[${a.server}]:${PORT}`;
      inNs(R, tables, '-t', 'nat', '-A', 'PREROUTING', '-d', a.router, '-p', p, '--dport', String(FWD), '-j', 'DNAT', '--to-destination', to);
    }
  }
  for (const p of ['tcp', 'udp']) {
    inNs(R, 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-d', SERVICE, '-p', p, '--dport', String(PORT), '-j', 'DNAT', '--to-destination', `${V4.server}:${PORT}`);
  }
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  for (const ns of [C, R, S]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not made
    }
  }
});

function start(ns: string, cmd: string, args: string[]): { child: ChildProcess; lines: string[] } {
  return startIn(['ip', 'netns', 'exec', ns], cmd, args);
}

/** Runs `cmd` under `enter` (a command that enters a namespace and runs the rest); collects its output's lines. */
function startIn(enter: string[], cmd: string, args: string[]): { child: ChildProcess; lines: string[] } {
  const child = spawn(enter[0], [...enter.slice(1), cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  let rest = '';
  child.stdout!.on('data', (d) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  return { child, lines };
}

async function peer<T>(ns: string, ...args: string[]): Promise<T> {
  const p = start(ns, process.execPath, [path.join(FIXTURES, 'nat-peer.js'), ...args]);
  await waitFor(() => p.lines.length > 0 || p.child.exitCode !== null, 20000, `nat-peer ${args[0]} in ${ns}`);
  assert.equal(p.child.exitCode, null, `nat-peer ${args.join(' ')} ended early`);
  return JSON.parse(p.lines[0]) as T;
}

type Tuple = { saddr: string; sport: number; daddr: string; dport: number };

/** `conntrack -L` in the router: each entry's protocol and its original and reply tuples, as the tool prints them. */
function conntrackList(): { proto: string; orig: Tuple; reply: Tuple; status: string }[] {
  const out = inNs(R, 'conntrack', '-L', '-f', 'ipv4') + inNs(R, 'conntrack', '-L', '-f', 'ipv6');
  return out
    .split('\n')
    .filter((l) => /^(tcp|udp) /.test(l))
    .map((l) => {
      const v = (k: string) => [...l.matchAll(new RegExp(`\\b${k}=(\\S+)`, 'g'))].map((m) => m[1]);
      const [src, dst, sport, dport] = [v('src'), v('dst'), v('sport'), v('dport')];
      const t = (i: number): Tuple => ({ saddr: src[i], sport: Number(sport[i]), daddr: dst[i], dport: Number(dport[i]) });
      return { proto: l.split(' ')[0], orig: t(0), reply: t(1), status: l };
    });
}

const key = (t: Tuple): string => `${t.saddr}|${t.sport}|${t.daddr}|${t.dport}`;
const turned = (t: Tuple): Tuple => ({ saddr: t.daddr, sport: t.dport, daddr: t.saddr, dport: t.sport });

test('nettrace in the router: every TCP and UDP flow through it carries the tuple conntrack -L shows, untranslated ones none', async () => {
  // nettrace first, so it sees every socket open: the client's and server's namespaces are not its own
  // entered with nsenter, which leaves the mounts alone: `ip netns exec` remounts /sys, hiding the cgroup v2
  // root that the UDP hooks attach to (nettrace would fall back to counting UDP sockets it never sees open or close)
  const top = startIn(['nsenter', `--net=/run/netns/${R}`], process.execPath, [CLI, 'top', '--json', '-d', '60', `( sport = :${PORT} or dport = :${PORT} or dport = :${FWD} )`]);
  await waitFor(() => top.lines.length > 0, 20000, 'the first report of nettrace top in the router');
  const server = await peer<{ pid: number }>(S, 'server', String(PORT), V4.server, V4.masq, V6.server, V6.masq);
  const targets = [V4.router, V4.masq, V4.server, V6.router, V6.masq, V6.server].map((a) => (a === V4.router ? `${a}:${FWD}` : a === V6.router ? `[${a}]:${FWD}` : a));
  const client = await peer<{ pid: number; tcp: Record<string, number>; udp: Record<string, number> }>(C, 'client', String(PORT), ...targets);
  // a target with a port is IPV4:PORT or [IPV6]:PORT; a bare one is an address
  const withPort = (t: string) => t.startsWith('[') || /^[\d.]+:/.test(t);
  const hostOf = (t: string) => (t.startsWith('[') ? t.slice(1, t.indexOf(']')) : withPort(t) ? t.split(':')[0] : t);
  const portOf = (t: string) => (withPort(t) ? Number(t.slice(t.lastIndexOf(':') + 1)) : PORT);

  // the client's sockets and the server's accepted ones, each by its own tuple
  const mine = (flows: Flow[]) => flows.filter((f) => f.pid === client.pid || (f.pid === server.pid && f.state === 'ESTABLISHED'));
  let flows: Flow[] = [];
  await waitFor(
    () => {
      const last = top.lines.at(-1);
      if (!last) return false;
      flows = mine((JSON.parse(last) as { connections: Flow[] }).connections);
      // twelve client flows (TCP and UDP to six targets) and the six accepted TCP ones, every translation asked for
      return flows.length === 18 && flows.filter((f) => f.nat !== null).length === 12;
    },
    30000,
    'the eighteen flows, twelve of them translated',
  ).catch((e: Error) => {
    const seen = flows.map((f) => `${f.proto} ${f.pid} ${f.saddr}:${f.sport}>${f.daddr}:${f.dport} ${f.state} nat=${JSON.stringify(f.nat)}`);
    const udp = top.lines.flatMap((l) => (JSON.parse(l) as { connections: Flow[] }).connections.filter((f) => f.proto === 'udp').map((f) => `${f.pid} ${f.sport}>${f.daddr}:${f.dport} ${JSON.stringify(f.nat)}`));
    throw new Error(`${e.message}; the last report had: ${seen.join('; ')}; udp ever: ${udp.join(', ')}`);
  });
  const entries = conntrackList();
  const byOrig = new Map(entries.map((e) => [`${e.proto}|${key(e.orig)}`, e]));
  const byReply = new Map(entries.map((e) => [`${e.proto}|${key(e.reply)}`, e]));
  for (const t of targets) {
    const host = hostOf(t);
    const v6 = host.includes(':');
    const a = v6 ? V6 : V4;
    for (const proto of ['tcp', 'udp'] as const) {
      const sport = proto === 'tcp' ? client.tcp[t] : client.udp[t];
      const f = flows.find((x) => x.pid === client.pid && x.proto === proto && x.sport === sport);
      assert.ok(f, `the client's ${proto} flow to ${t}`);
      const own = { saddr: a.client, sport, daddr: host, dport: portOf(t) };
      assert.deepEqual({ saddr: f.saddr, sport: f.sport, daddr: f.daddr, dport: f.dport }, own);
      const e = byOrig.get(`${proto}|${key(own)}`);
      assert.ok(e, `conntrack -L has the ${proto} flow to ${t} as an original tuple`);
      const want = turned(e.reply);
      if (host === a.server) {
        assert.deepEqual(want, own, `${proto} to ${t} goes through untranslated`);
        assert.equal(f.nat, null, `${proto} to ${t}`);
      } else {
        assert.deepEqual(f.nat, { ...want, kind: host === a.router ? 'dnat' : 'snat' }, `${proto} to ${t}: ${e.status}`);
        // what the topology means, so that agreeing with conntrack -L cannot hide a wrong topology
        if (host === a.router) assert.deepEqual([f.nat!.daddr, f.nat!.dport, f.nat!.saddr], [a.server, PORT, a.client]);
        else assert.deepEqual([f.nat!.saddr, f.nat!.daddr, f.nat!.dport], [a.gw, a.masq, PORT]);
      }
      if (proto === 'udp') continue;
      // the server's end of the same TCP connection: the client's real address behind the masquerade, the forwarded port behind DNAT
      const accepted = flows.find((x) => x.pid === server.pid && key(x) === key(turned(f.nat ? { ...f.nat } : own)));
      assert.ok(accepted, `the server's socket of the TCP flow to ${t}`);
      const back = byReply.get(`tcp|${key(accepted)}`);
      assert.ok(back, `conntrack -L has the server's socket of ${t} as a reply tuple`);
      if (host === a.server) assert.equal(accepted.nat, null);
      else assert.deepEqual(accepted.nat, { ...turned(back.orig), kind: host === a.router ? 'dnat' : 'snat' });
      if (host === a.masq) assert.deepEqual([accepted.nat!.daddr, accepted.nat!.dport], [a.client, sport]);
      if (host === a.router) assert.deepEqual([accepted.nat!.saddr, accepted.nat!.sport], [a.router, FWD]);
    }
  }
  top.child.kill('SIGINT');
});

test('nettrace flows in the router: its own connection to a service address shows the DNAT of the OUTPUT chain, in JSON and text', async () => {
  const local = await peer<{ pid: number; tcp: Record<string, number> }>(R, 'client', String(PORT), SERVICE);
  const sport = local.tcp[SERVICE];
  const flows = inNs(R, process.execPath, CLI, 'flows', '--json', '-t', 'dport', '=', `:${PORT}`)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Flow);
  const f = flows.find((x) => x.pid === local.pid && x.sport === sport);
  assert.ok(f, 'the router\'s own connection');
  const e = conntrackList().find((x) => x.proto === 'tcp' && key(x.orig) === key({ saddr: V4.gw, sport, daddr: SERVICE, dport: PORT }));
  assert.ok(e, 'conntrack -L has it');
  assert.deepEqual(f.nat, { ...turned(e.reply), kind: 'dnat' });
  assert.deepEqual(f.nat, { saddr: V4.gw, sport, daddr: V4.server, dport: PORT, kind: 'dnat' });
  const text = inNs(R, process.execPath, CLI, 'flows', '-t', 'dport', '=', `:${PORT}`);
  assert.match(text.split('\n')[0], /NAT \(as the peer sees it\)$/);
  assert.match(text, new RegExp(`${V4.gw}:${sport} +${SERVICE}:${PORT} .* dnat ${V4.gw}:${sport} > ${V4.server}:${PORT}\n`));
});
