/** OTLP metric data from nettrace's metric families: each value in its type, no empty metric (the agent's exports are test/kernel/otlp*.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toMetricData } from '../../src';

test('ratios and seconds are doubles, counts integers; a family with no series is not sent', () => {
  const data = toMetricData(
    [
      { name: 'r', help: '', unit: '1', kind: 'gauge', series: [{ labels: {}, value: 0.57 }] },
      { name: 'c', help: '', unit: '{connection}', kind: 'counter', series: [{ labels: {}, value: 3 }] },
      { name: 'b', help: '', unit: 'By', kind: 'counter', series: [{ labels: {}, value: 300 }] },
      { name: 's', help: '', unit: 's', kind: 'gauge', series: [{ labels: {}, value: 0.25 }] },
      { name: 'empty', help: '', unit: '{segment}', kind: 'counter', series: [] },
    ],
    0,
    1000,
  );
  assert.deepEqual(
    data.map((d) => [d.descriptor.name, d.descriptor.valueType]),
    [['r', 1], ['c', 0], ['b', 0], ['s', 1]], // ValueType.INT = 0, DOUBLE = 1
  );
});
