/**
 * Containers without the kernel: what each runtime's cgroup names say, and containers and translations
 * through the protobuf stream and top's grouping. Flows of real cgroups are test/kernel/containers.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Flow } from '../../src';
import { classifyCgroup } from '../../src/flows/cgroup-names';
import { newFlow } from '../../src/flows/flow';
import { flowSnapshot } from '../../src/flows/rollup';
import { decodeAll, encodeItems } from '../../src/proto/stream';
import { buildModel } from '../../src/cli/commands/top/view-model';
import { applyKey, initialUi } from '../../src/cli/commands/top/ui';
import { paneData, paneTitleOf } from '../../src/cli/commands/top/panes';
import { hex, PLACES, POD } from '../support/cgroup-places';

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
