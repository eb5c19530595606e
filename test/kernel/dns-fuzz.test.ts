/**
 * Malformed DNS never crashes anything and is counted: the parser on random
 * and mutated payloads, then the whole path (kernel copy, ring, pairing) on
 * fuzzed datagrams sent to a port 53 in a network namespace of the test's own.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { encode } from 'dns-packet';
import { Clock, DnsLookups, Tracer } from '../../src';
import { parsePayload } from '../../src/dns/message';
import { DnsCopy, Kind } from '../../src/layout';

const DNS_MAX = DnsCopy.Max;
import { FIXTURES, waitFor } from '../support/helpers';

const NETNS = `ntdnsfz${process.pid}`;
after(() => {
  try {
    execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
  } catch {
    // never made
  }
});

const valid = encode({
  type: 'response',
  id: 7,
  flags: 0x100,
  questions: [{ name: 'www.ntdns.test', type: 'A', class: 'IN' }],
  answers: [
    { name: 'www.ntdns.test', type: 'CNAME', ttl: 60, data: 'x.ntdns.test' },
    { name: 'x.ntdns.test', type: 'A', ttl: 60, data: '10.0.0.1' },
  ],
});

/** Random bytes, and a valid response with bytes changed, cut or appended. */
const payloads = fc.oneof(
  fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)),
  fc
    .tuple(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { maxLength: 8 }), fc.nat(valid.length), fc.uint8Array({ maxLength: 16 }))
    .map(([flips, cut, tail]) => {
      const b = Buffer.from(valid);
      for (const [at, v] of flips) b[at] = v;
      return Buffer.concat([b.subarray(0, cut), Buffer.from(tail)]);
    }),
);

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

test('fuzzed datagrams to a port 53: each one copied by the kernel, parsed or counted, none lost, nothing crashes', async () => {
  execFileSync('ip', ['netns', 'add', NETNS]);
  execFileSync('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
  const sent = fc.sample(payloads.filter((p) => p.length > 0), { numRuns: 300, seed: 18 });
  // what the same parser makes of what the kernel keeps of each: the prediction is exact
  const expected = { malformed: 0, cut: 0 };
  for (const p of sent) {
    const f = parsePayload(p.subarray(0, DNS_MAX), p.length, 17).fault;
    if (f === 'malformed' || f === 'cut') expected[f]++;
  }
  const tracer = Tracer.start({ events: ['dns'], trackSockets: false });
  try {
    const clock = new Clock();
    const lookups = new DnsLookups(() => {}, { timeoutMs: 60_000 });
    const child = spawn('ip', ['netns', 'exec', NETNS, process.execPath, path.join(FIXTURES, 'dns-sender.js'), '127.0.0.3'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    const pid = child.pid!;
    const copies: Buffer[] = [];
    tracer.onBatch((c) => {
      while (c.next()) {
        if (c.kind !== Kind.Dns || !c.hasOwner || c.pid !== pid) continue;
        copies.push(Buffer.from(c.dnsPayload()));
        lookups.add(c, clock);
      }
    });
    child.stdin!.end(JSON.stringify(sent.map((p) => p.toString('hex'))));
    await new Promise((resolve) => child.on('exit', resolve));
    await waitFor(() => copies.length >= sent.length, 10_000, `${sent.length} DNS records`);
    assert.equal(copies.length, sent.length);
    copies.forEach((c, i) => assert.ok(c.equals(sent[i].subarray(0, DNS_MAX)), `datagram ${i} copied exactly`));
    assert.equal(lookups.stats.records, sent.length);
    assert.equal(lookups.stats.malformed, expected.malformed);
    assert.equal(lookups.stats.cut, expected.cut);
    assert.ok(expected.malformed > 100, `the fuzz reached the parser's failures (${expected.malformed})`);
    assert.equal(tracer.stats().dropsByKind.dns, 0);
  } finally {
    await tracer.stop();
  }
});
