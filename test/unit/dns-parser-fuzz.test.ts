/** Malformed DNS never crashes the parser and is counted (the kernel path on the same payloads: test/kernel/dns-fuzz.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePayload } from '../../src/dns/message';
import { payloads, valid } from '../support/dns-payloads';

test('the parser never throws: every payload is messages or a counted fault', () => {
  fc.assert(
    fc.property(payloads, fc.nat(2000), fc.constantFrom(6, 17), (p, extra, proto) => {
      const r = parsePayload(p, p.length + (extra % 2 ? extra : 0), proto);
      assert.ok(r.messages.length > 0 || r.fault !== null);
      for (const m of r.messages) assert.equal(typeof m.name, 'string');
    }),
    { numRuns: 3000 },
  );
  assert.deepEqual(parsePayload(valid, valid.length, 17).fault, null);
  assert.equal(parsePayload(valid.subarray(0, 20), valid.length, 17).fault, 'cut');
  assert.equal(parsePayload(Buffer.from([1, 2, 3]), 3, 17).fault, 'malformed');
});
