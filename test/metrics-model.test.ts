/** The metrics model without a kernel: exposition text, escaping, label budgets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeLabelValue, renderExposition } from '../src/metrics/exposition';
import { LabelBudget } from '../src/metrics/labels';
import { CounterVec, Histogram } from '../src/metrics/model';
import { parseExposition } from './serve-helpers';

test('label values escape backslash, double quote and line feed, and nothing else', () => {
  assert.equal(escapeLabelValue('plain'), 'plain');
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeLabelValue('tab\there é'), 'tab\there é');
});

test('the exposition: _total on counters, cumulative buckets up to +Inf, HELP and TYPE once per family', () => {
  const c = new CounterVec('nt_things', 'Things,\nper owner.', '{thing}', ['comm']);
  c.inc(['a"b']);
  c.inc(['a"b'], 2);
  c.inc(['c']);
  const h = new Histogram('nt_rtt_seconds', 'RTT.', 's', [0.001, 0.01]);
  for (const v of [0.0005, 0.005, 0.005, 5]) h.observe(v);
  const text = renderExposition([c.family(), h.family()]);
  assert.equal(
    text,
    [
      '# HELP nt_things_total Things,\\nper owner.',
      '# TYPE nt_things_total counter',
      'nt_things_total{comm="a\\"b"} 3',
      'nt_things_total{comm="c"} 1',
      '# HELP nt_rtt_seconds RTT.',
      '# TYPE nt_rtt_seconds histogram',
      'nt_rtt_seconds_bucket{le="0.001"} 1',
      'nt_rtt_seconds_bucket{le="0.01"} 3',
      'nt_rtt_seconds_bucket{le="+Inf"} 4',
      'nt_rtt_seconds_sum 5.0105',
      'nt_rtt_seconds_count 4',
      '',
    ].join('\n'),
  );
  assert.equal(parseExposition(text).find((s) => s.name === 'nt_things_total')!.labels.comm, 'a"b');
  c.drop('comm', 'c');
  assert.doesNotMatch(renderExposition([c.family()]), /comm="c"/);
});

test('a label budget holds at most `limit` values; the rest are other; idle places go to the busiest waiting value', () => {
  const b = new LabelBudget(2, 1000);
  assert.equal(b.label('a', 1, 0), 'a');
  assert.equal(b.label('b', 1, 0), 'b');
  assert.equal(b.label('c', 1, 10), 'other');
  assert.equal(b.label('d', 50, 10), 'other');
  assert.equal(b.label('a', 1, 900), 'a');
  assert.deepEqual(b.sweep(500), [], 'nothing is idle yet');
  assert.deepEqual(b.sweep(1000), ['b'], 'b was idle for 1000 ms');
  assert.equal(b.label('d', 1, 1001), 'd', 'd, the busiest waiting, took its place');
  assert.equal(b.label('c', 1, 1001), 'other');
  assert.equal(b.label('b', 1, 1001), 'other', 'b must wait now');
  // the waiting list is bounded too
  for (let i = 0; i < 100; i++) b.label(`w${i}`, 1, 1002);
  assert.equal(b.label('a', 1, 1003), 'a');
});
