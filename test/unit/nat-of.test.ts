/** natOf: which of a conntrack entry's tuples is the far end's view of a socket (the kernel half is test/kernel/nat.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConntrackAnswer } from '../../src/native';
import { natOf } from '../../src/flows/nat';

test('natOf: the far end\'s view of the socket from either of the entry\'s tuples, none when they mirror each other', () => {
  const orig = { saddr: '10.0.1.2', sport: 40000, daddr: '10.0.1.1', dport: 8080 };
  const reply = { saddr: '10.0.2.2', sport: 80, daddr: '10.0.1.2', dport: 40000 };
  const a: ConntrackAnswer = { found: true, orig, reply, status: 1 << 5 };
  assert.deepEqual(natOf(orig, a), { saddr: '10.0.1.2', sport: 40000, daddr: '10.0.2.2', dport: 80, kind: 'dnat' });
  assert.deepEqual(natOf(reply, a), { saddr: '10.0.1.1', sport: 8080, daddr: '10.0.1.2', dport: 40000, kind: 'dnat' });
  // a v4-mapped socket, written as nettrace writes its addresses
  const v4mapped = { saddr: '::ffff:a00:102', sport: 40000, daddr: '::ffff:a00:101', dport: 8080 };
  assert.deepEqual(natOf(v4mapped, a), { saddr: '::ffff:a00:102', sport: 40000, daddr: '::ffff:a00:202', dport: 80, kind: 'dnat' });
  assert.equal(natOf(orig, { found: true, orig, reply: { saddr: orig.daddr, sport: orig.dport, daddr: orig.saddr, dport: orig.sport }, status: 0 }), null);
  assert.equal(natOf(orig, { found: false, status: 0 }), null);
});
