/**
 * deploy/ run on this machine: the DaemonSet's command line and environment as
 * its pod would get them (downward API filled in, only the capabilities it
 * adds, no privilege escalation), and the systemd unit's ExecStart under its
 * CapabilityBoundingSet, NoNewPrivileges and a read-only system. systemd is not
 * PID 1 here (so no systemd-run): setpriv and a mount namespace apply the same
 * restrictions. Each counts a real exchange exactly.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseExposition, valueOf } from '../support/exposition';
import { ROOT } from '../support/paths';
import { Exchange, peerClient, peerServer } from '../support/peer';
import { makeNetns, removeNetns } from '../support/netns';

const NS = 'ntfl-deploy';
const children: ChildProcess[] = [];
after(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  removeNetns(NS);
});

/** Runs `argv` until /metrics on `host:port` counts the exchange; returns the child's stderr after SIGTERM. */
async function runAgent(argv: string[], env: NodeJS.ProcessEnv, host: string, port: number, x: Exchange, title: string): Promise<{ stderr: string; code: number | null }> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = once(child, 'exit');
  const end = Date.now() + 20000;
  const probe = async (p: string): Promise<{ status: number; body: string }> => {
    for (;;) {
      try {
        return await httpGet(host, port, p);
      } catch (e) {
        if (child.exitCode !== null || Date.now() > end) throw new Error(`the agent did not serve ${p}: ${String(e)}; ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  assert.equal((await probe('/healthz')).status, 200, 'the liveness probe passes');
  const peer = await peerServer('127.0.0.1', x, children, NS);
  await peerClient('127.0.0.1', peer.port, 9, x, title, NS);
  const want: [Record<string, string>, number][] = [
    [{ result: 'ok' }, x.ok],
    [{ result: 'refused' }, x.refused],
  ];
  let got: number[] = [];
  while (Date.now() < end) {
    const s = parseExposition((await probe('/metrics')).body);
    got = want.map(([l]) => valueOf(s, 'nettrace_tcp_connects_total', { ...l, comm: title }));
    if (got.every((v, i) => v === want[i][1])) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(got, want.map(([, v]) => v), stderr);
  peer.child.kill('SIGTERM');
  child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return { stderr, code };
}

async function httpGet(host: string, port: number, p: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://${host}:${port}${p}`);
  return { status: r.status, body: await r.text() };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
test("the DaemonSet's container: its arguments and environment as the pod gets them, only its capabilities, serve counts exactly", async () => {
  makeNetns(NS);
  const docs = parseAllDocuments(fs.readFileSync(path.join(ROOT, 'deploy', 'kubernetes', 'daemonset.yaml'), 'utf8')).map((d) => d.toJS());
  const c = docs.find((d: any) => d.kind === 'DaemonSet').spec.template.spec.containers[0];
  // the downward API as the kubelet fills it in; the node's address is a loopback one here
  const fields: Record<string, string> = { 'status.hostIP': '127.0.0.77', 'spec.nodeName': 'ntfl-node', 'metadata.name': 'nettrace-ntfl1', 'metadata.namespace': 'nettrace' };
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const expand = (s: string): string => s.replace(/\$\(([A-Z_0-9]+)\)/g, (_, v: string) => env[v] ?? `$(${v})`);
  for (const e of c.env as any[]) {
    const value = e.value !== undefined ? expand(e.value) : fields[e.valueFrom?.fieldRef?.fieldPath];
    assert.ok(value !== undefined, `env ${e.name}`);
    env[e.name] = value;
  }
  const args: string[] = c.args.map(expand);
  const caps: string[] = c.securityContext.capabilities.add;
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  const setpriv = ['setpriv', '--no-new-privs', `--bounding-set=-all,${caps.map((k) => `+${k.toLowerCase()}`).join(',')}`];
  const r = await runAgent([...setpriv, process.execPath, path.join(ROOT, 'bin', 'nettrace.js'), ...args], env, '127.0.0.77', 9559, { ok: 3, resets: 0, refused: 2, send: 10, reply: 20 }, 'ntfl-dsclient');
  assert.equal(r.code, 0, r.stderr);
  // no hook failed to attach, and nothing was dropped
  assert.match(r.stderr, /^nettrace: serving http:\/\/127\.0\.0\.77:9559\/metrics\nnettrace: \d+ events, 0 dropped\n$/);
});

test("the systemd unit's ExecStart under its CapabilityBoundingSet, NoNewPrivileges and ProtectSystem=strict: serve counts exactly", async () => {
  makeNetns(NS);
  const unit = fs.readFileSync(path.join(ROOT, 'deploy', 'nettrace.service'), 'utf8');
  const key = (k: string): string => new RegExp(`^${k}=(.*)$`, 'm').exec(unit)![1];
  const caps = key('CapabilityBoundingSet').split(' ');
  assert.deepEqual(key('AmbientCapabilities').split(' '), caps);
  assert.equal(key('NoNewPrivileges'), 'yes');
  assert.equal(key('ProtectSystem'), 'strict');
  // the default arguments, on another loopback address so that nothing else on the machine is in the way
  const args = /^"NETTRACE_ARGS=(.*)"$/.exec(key('Environment'))![1].replace('127.0.0.1:', '127.0.0.78:');
  const exec = key('ExecStart')
    .replace('/usr/bin/node', process.execPath)
    .replace('/opt/nettrace', ROOT)
    .replace('$NETTRACE_ARGS', args)
    .split(' ');
  const setpriv = ['setpriv', '--no-new-privs', `--bounding-set=-all,${caps.map((k) => `+${k.replace(/^CAP_/, '').toLowerCase()}`).join(',')}`];
  // ProtectSystem=strict: the file system read-only (in a mount namespace of its own; /proc, /sys and /dev stay)
  const sandbox = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -o remount,bind,ro / && exec "$@"', 'sh'];
  const r = await runAgent([...sandbox, ...setpriv, ...exec], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, '127.0.0.78', 9559, { ok: 2, resets: 0, refused: 1, send: 5, reply: 6 }, 'ntfl-unitclient');
  assert.equal(r.code, 0, r.stderr);
  // no hook failed to attach, and nothing was dropped
  assert.match(r.stderr, /^nettrace: serving http:\/\/127\.0\.0\.78:9559\/metrics\nnettrace: \d+ events, 0 dropped\n$/);
});
