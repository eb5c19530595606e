/** deploy/: the manifests parse, carry what nettrace needs, and their arguments are ones nettrace accepts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseCommand } from '../src/cli/options';
import { SERVE_OPTIONS, serveOptions } from '../src/cli/commands/serve';
import { ROOT } from './helpers';

const DEPLOY = path.join(ROOT, 'deploy');

/* eslint-disable @typescript-eslint/no-explicit-any */
function documents(file: string): any[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors.map(String), [], `${file} parses`);
  return docs.map((d) => d.toJS());
}

test('deploy/kubernetes/daemonset.yaml: a DaemonSet with host network and PID, the BPF privileges, mounts and the metrics port', () => {
  const docs = documents(path.join(DEPLOY, 'kubernetes', 'daemonset.yaml'));
  const ds = docs.find((d) => d.kind === 'DaemonSet');
  assert.ok(ds, 'a DaemonSet');
  assert.equal(ds.apiVersion, 'apps/v1');
  assert.ok(docs.some((d) => d.kind === 'Namespace' && d.metadata.name === ds.metadata.namespace), 'its namespace is created');
  const pod = ds.spec.template;
  for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) assert.equal(pod.metadata.labels[k], v, 'the selector matches the pod');
  assert.equal(pod.spec.hostNetwork, true);
  assert.equal(pod.spec.hostPID, true);
  assert.equal(pod.spec.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.equal(pod.spec.containers.length, 1);
  const c = pod.spec.containers[0];

  const sc = c.securityContext;
  const caps: string[] = sc.capabilities?.add ?? [];
  assert.ok(sc.privileged === true || ['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_ADMIN'].every((cap) => caps.includes(cap)), `privileges: ${caps}`);
  // each capability is named with its reason in the comment above it
  const text = fs.readFileSync(path.join(DEPLOY, 'kubernetes', 'daemonset.yaml'), 'utf8');
  for (const cap of caps) assert.match(text, new RegExp(`#\\s+${cap}\\s+\\S`), `${cap} has its reason`);
  // the host's cgroup v2 hierarchy, not the pod's own cgroup namespace's
  const cg = c.volumeMounts.find((vm: any) => vm.name === 'cgroup');
  assert.equal(pod.spec.volumes.find((v: any) => v.name === 'cgroup').hostPath.path, '/sys/fs/cgroup');
  assert.notEqual(cg.mountPath, '/sys/fs/cgroup', 'beside the container\'s own cgroup mount');
  assert.ok(['K8S_NODE_NAME', 'K8S_POD_NAME'].every((n) => c.env.some((e: any) => e.name === n && e.valueFrom?.fieldRef)), 'the downward API names the agent');
  for (const cap of caps) assert.match(cap, /^[A-Z_]+$/, 'capabilities are named without CAP_');

  const volumes = new Map<string, any>(pod.spec.volumes.map((v: any) => [v.name, v]));
  for (const dir of ['/sys/kernel/btf', '/sys/kernel/tracing', '/sys/fs/bpf']) {
    const m = c.volumeMounts.find((vm: any) => vm.mountPath === dir);
    assert.ok(m, `${dir} is mounted`);
    assert.equal(volumes.get(m.name)?.hostPath?.path, dir, `${dir} comes from the host`);
  }
  assert.equal(c.volumeMounts.find((vm: any) => vm.mountPath === '/sys/kernel/btf').readOnly, true);

  const port = c.ports.find((p: any) => p.name === 'metrics');
  assert.deepEqual([port.containerPort, port.protocol], [9559, 'TCP']);
  for (const probe of [c.livenessProbe, c.readinessProbe]) assert.deepEqual(probe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.equal(pod.metadata.annotations['prometheus.io/port'], String(port.containerPort));

  // every $(VAR) is defined (in env, before any env value that uses it), and nettrace accepts the arguments
  const env: { name: string; value?: string }[] = c.env;
  const refs = (s: string): string[] => [...s.matchAll(/\$\(([A-Z_]+)\)/g)].map((m) => m[1]);
  env.forEach((e, i) => refs(e.value ?? '').forEach((r) => assert.ok(env.slice(0, i).some((d) => d.name === r), `${e.name} uses ${r} defined before it`)));
  const args: string[] = c.args.map((a: string) => {
    refs(a).forEach((r) => assert.ok(env.some((d) => d.name === r), `argument ${a} uses ${r}`));
    return a.replace('$(NODE_IP)', '10.1.2.3');
  });
  assert.equal(args[0], 'serve');
  const { common, values } = parseCommand(args.slice(1), SERVE_OPTIONS);
  const o = serveOptions(common, values);
  assert.deepEqual([o.host, o.port], ['10.1.2.3', port.containerPort]);
});

test('deploy/nettrace.service: systemd-analyze verify finds nothing, and the unit runs serve with the BPF capabilities', () => {
  const unit = path.join(DEPLOY, 'nettrace.service');
  // systemd-analyze exits 0 on most problems; what it prints is the verdict
  const complaints = (file: string): string => execFileSync('sh', ['-c', 'systemd-analyze verify "$1" 2>&1', 'sh', file], { encoding: 'utf8' }).trim();
  assert.equal(complaints(unit), '', 'systemd-analyze verify is silent');
  // the check can fail: a misspelt key in a copy is reported
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-unit-'));
  try {
    const broken = path.join(dir, 'nettrace.service');
    fs.writeFileSync(broken, fs.readFileSync(unit, 'utf8').replace('KillSignal=', 'KilSignal='));
    assert.match(complaints(broken), /Unknown key 'KilSignal'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of fs.readFileSync(unit, 'utf8').split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1];
      continue;
    }
    const kv = /^(\w+)=(.*)$/.exec(line);
    assert.ok(kv, `a key=value line: ${line}`);
    const k = `${section}.${kv[1]}`;
    keys.set(k, [...(keys.get(k) ?? []), kv[2]]);
  }
  assert.match(keys.get('Service.ExecStart')![0], /nettrace\.js serve \$NETTRACE_ARGS$/);
  assert.deepEqual(keys.get('Service.KillSignal'), ['SIGTERM']);
  for (const cap of ['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']) assert.ok(keys.get('Service.CapabilityBoundingSet')![0].split(' ').includes(cap), cap);
  assert.deepEqual(keys.get('Install.WantedBy'), ['multi-user.target']);
  // the default arguments are ones nettrace accepts, on loopback
  const defaults = /^"NETTRACE_ARGS=(.*)"$/.exec(keys.get('Service.Environment')![0])![1].split(' ');
  const { common, values } = parseCommand(defaults, SERVE_OPTIONS);
  assert.equal(serveOptions(common, values).host, '127.0.0.1');
});
