/**
 * A DNS zone for the DNS tests, in a network namespace of the test's own:
 * dnsmasq serving ntdns.test on 127.0.0.1 and ::1 (glibc there asks it, through
 * /etc/netns/NAME/resolv.conf), forwarding broken.test to a broken upstream
 * (test/kernel/fixtures/dns-upstream: SERVFAIL) and silent.test to an address where
 * nothing answers; and a tracer of the lookups it sees.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DnsEvent, NettraceEvent, Tracer } from '../../src';
import { captured } from './cli';
import { FIXTURES } from './paths';
import { waitFor } from './wait';

const ZONE = [
  '--host-record=www.ntdns.test,10.77.0.1,fd77::1',
  '--cname=alias.ntdns.test,www.ntdns.test',
  '--cname=deep.ntdns.test,alias.ntdns.test',
  '--local=/ntdns.test/',
  '--local-ttl=300',
  '--server=/broken.test/127.0.0.2',
  '--server=/silent.test/127.0.0.3', // nothing listens there: dnsmasq never answers
];

export interface Zone {
  netns: string;
  dnsmasq: ChildProcess;
  /** Every lookup the zone's tracer (events: ['dns'], 1.5 s timeout) reported so far. */
  events: DnsEvent[];
  /** Runs a command in the namespace to its end: its pid, exit code, output and wall time. */
  run(cmd: string, args: string[]): Promise<{ pid: number; code: number | null; out: string; ms: number }>;
  /** Starts a long-running process in the namespace (killed by stop()). */
  daemon(cmd: string, args: string[]): ChildProcess;
  /** The lookups of `pid`, once there are at least `n`. */
  lookupsOf(pid: number, n: number): Promise<DnsEvent[]>;
  stop(): Promise<void>;
}

export async function startZone(name: string): Promise<Zone> {
  const netns = `${name}${process.pid}`;
  const resolvDir = `/etc/netns/${netns}`; // ip netns exec mounts its resolv.conf over /etc/resolv.conf
  const children: ChildProcess[] = [];
  const events: DnsEvent[] = [];
  execFileSync('ip', ['netns', 'add', netns]);
  execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  fs.mkdirSync(resolvDir, { recursive: true });
  fs.writeFileSync(path.join(resolvDir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  const tracer = Tracer.start({ events: ['dns'], trackSockets: false, dnsTimeoutMs: 1500 });
  void (async () => {
    for await (const e of tracer as AsyncIterable<NettraceEvent>) if (e.type === 'dns') events.push(e);
  })();
  const daemon = (cmd: string, args: string[]): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return child;
  };
  const run: Zone['run'] = (cmd, args) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const io = captured(child);
    return new Promise((resolve) =>
      child.on('exit', (code) => resolve({ pid: child.pid!, code, out: io.out() + io.err(), ms: Number(process.hrtime.bigint() - t0) / 1e6 })),
    );
  };
  const stop = async (): Promise<void> => {
    await tracer.stop();
    children.forEach((c) => c.kill('SIGKILL'));
    try {
      execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    fs.rmSync(resolvDir, { recursive: true, force: true });
  };
  try {
    const up = captured(daemon(process.execPath, [path.join(FIXTURES, 'dns-upstream.js'), '127.0.0.2']));
    await waitFor(() => up.out().includes('ready'), 5000, 'the broken upstream');
    const dnsmasq = daemon('dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--pid-file=', '--bind-interfaces',
      '--listen-address=127.0.0.1', '--listen-address=::1', ...ZONE]);
    for (let i = 0; ; i++) {
      const r = await run('dig', ['+short', '+tries=1', '+time=1', '@127.0.0.1', 'www.ntdns.test', 'A']);
      if (r.out.trim() === '10.77.0.1') break;
      if (i === 20) throw new Error(`dnsmasq does not answer: ${r.out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const lookupsOf = async (pid: number, n: number): Promise<DnsEvent[]> => {
      await waitFor(() => events.filter((e) => e.pid === pid).length >= n, 8000, `${n} lookups of pid ${pid}`);
      return events.filter((e) => e.pid === pid);
    };
    return { netns, dnsmasq, events, run, daemon, lookupsOf, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
