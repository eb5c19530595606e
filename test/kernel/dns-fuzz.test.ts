/**
 * Malformed DNS never crashes anything and is counted: the whole path (kernel
 * copy, ring, pairing) on fuzzed datagrams sent to a port 53 in a network
 * namespace of the test's own. The parser alone is test/unit/dns-parser-fuzz.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { Clock, DnsLookups, Tracer } from '../../src';
import { parsePayload } from '../../src/dns/message';
import { DnsCopy, Kind } from '../../src/layout';
import { payloads } from '../support/dns-payloads';
import { FIXTURES } from '../support/paths';
import { waitFor } from '../support/wait';

const DNS_MAX = DnsCopy.Max;

const NETNS = `ntdnsfz${process.pid}`;
after(() => {
  try {
    execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
  } catch {
    // never made
  }
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
