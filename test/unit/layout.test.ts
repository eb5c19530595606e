/**
 * User space reads records at offsets generated from the committed BPF
 * object's BTF (scripts/gen-records.js): the committed src/layout.ts must be
 * what that object says now. A header change without regenerating fails here
 * and in CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../support/paths';
import { Close, Dns, DnsCopy, DnsDir, Head, Kind } from '../../src/layout';

test('src/layout.ts is what the BPF object says', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'gen-records.js'), '--check'], { encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
});

test('the generated offsets are the ones the decoder relies on', () => {
  // what bpf/nettrace.h lays out: a head of 112 bytes, records in multiples of 8
  assert.equal(Head.SIZE, 112);
  assert.equal(Head.sock.cookie, 16);
  assert.equal(Close.SIZE % 8, 0);
  assert.deepEqual(Kind, { State: 1, Connect: 2, Accept: 3, Close: 4, Udp: 5, Dns: 6 });
  assert.deepEqual([Dns.SIZE, DnsDir, DnsCopy], [120, { Sent: 1, Received: 2 }, { Max: 512 }]);
});
