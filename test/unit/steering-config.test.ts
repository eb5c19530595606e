/** The receive-steering configuration as the kernel prints it in sysfs (the steering itself is test/kernel/steering.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskCpus, parseQueues } from '../../src/steering/config';

test('rps_cpus masks as the kernel prints them, beyond 32 CPUs too', () => {
  assert.deepEqual(maskCpus('0'), []);
  assert.deepEqual(maskCpus('5'), [0, 2]);
  assert.deepEqual(maskCpus('00000000,00000005'), [0, 2]);
  assert.deepEqual(maskCpus('1,80000000'), [31, 32]);
  const [lo] = parseQueues('lo 1 rx-0 00000002 256\n', 7, 4096);
  assert.deepEqual(lo, { netns: 7, name: 'lo', ifindex: 1, queues: [{ queue: 'rx-0', rps_mask: '00000002', rps_cpus: [1], rps_flow_cnt: 256, rps: true, rfs: true }] });
  assert.equal(parseQueues('lo 1 rx-0 0 256\n', 7, 0)[0].queues[0].rfs, false, 'no RFS without rps_sock_flow_entries');
});
