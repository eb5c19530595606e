/** DnsNames, the cache that names flows after their process's lookups (against a real zone: test/kernel/dns-names.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsEvent, DnsNames } from '../../src';

test('names live for their TTL (at least a minute), per process first, bounded with evictions counted', () => {
  const names = new DnsNames({ maxEntries: 2 });
  const lookup = (pid: number, name: string, addr: string, ttl: number): DnsEvent =>
    ({ type: 'dns', netns: 1, pid, name, cnames: [], answers: [{ name, type: 'A', ttl, data: addr }] }) as unknown as DnsEvent;
  names.learn(lookup(10, 'a.test', '10.0.0.1', 300), 0);
  names.learn(lookup(11, 'b.test', '10.0.0.1', 0), 0);
  assert.equal(names.name(1, 10, '10.0.0.1', 1000), 'a.test'); // its own lookup
  assert.equal(names.name(1, 12, '10.0.0.1', 1000), 'b.test'); // the namespace's latest
  assert.equal(names.name(2, 10, '10.0.0.1', 1000), null); // another namespace
  assert.equal(names.name(1, 12, '10.0.0.1', 60_001), null); // TTL 0 held a minute
  assert.equal(names.name(1, 10, '10.0.0.1', 299_000), 'a.test');
  assert.equal(names.name(1, 10, '10.0.0.1', 300_001), null);
  names.learn(lookup(10, 'c.test', '10.0.0.3', 300), 0);
  names.learn(lookup(10, 'd.test', '10.0.0.4', 300), 0);
  assert.equal(names.evictions, 1); // (pid 11, 10.0.0.1) went: the others had expired
  assert.equal(names.name(1, null, '10.0.0.4', 1), 'd.test');
});
