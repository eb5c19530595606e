/**
 * `nettrace decode` under a property-based fuzzer: random bytes, random bytes behind a valid header,
 * truncations and mutations of valid streams of random events. The decoder never throws anything
 * but a DecodeError, which is one line naming a byte offset within the input; whole streams of
 * random events decode to exactly what was encoded. The bulk runs in-process; a sample goes through
 * the CLI, which must exit 0 or 2 with at most one line on stderr and no stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { decodeAll, DecodeError, encodeItems, NettraceEvent, StreamItem, TCP_STATES } from '../src';
import { formatAddr } from '../src/record-cursor';
import { EventBase } from '../src/events';
import { connectResult } from '../src/tcp';
import { CLI } from './helpers';

const header: StreamItem = { type: 'header', version: 1, producer: 'nettrace fuzz', hostname: 'fuzz', started: 1700000000000, command: 'stream' };
const HEADER_BYTES = encodeItems([header]);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const us = fc.integer({ min: 0, max: 2 ** 50 });
const state = fc.constantFrom(...TCP_STATES);
const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 15 });
const addr = (family: 4 | 6) => fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 }).map((b) => formatAddr(Buffer.from(b), 0, family));

const base: fc.Arbitrary<EventBase> = fc.constantFrom<4 | 6>(4, 6).chain((family) =>
  fc.record({
    ts: us.map((v) => v / 1000),
    cpu: fc.integer({ min: 0, max: 4095 }),
    sock: u64,
    netns: u32,
    owner: fc.option(fc.record({ pid: u32, tid: u32, uid: u32, comm: latin1, cgroup: u64 })),
    family: fc.constant(family),
    saddr: addr(family),
    sport: fc.integer({ min: 0, max: 65535 }),
    daddr: addr(family),
    dport: fc.integer({ min: 0, max: 65535 }),
  }).map(({ owner, ...rest }) => ({
    ...rest,
    pid: owner?.pid ?? null,
    tid: owner?.tid ?? null,
    uid: owner?.uid ?? null,
    comm: owner?.comm ?? null,
    cgroup: owner?.cgroup ?? null,
  })),
);

const event: fc.Arbitrary<NettraceEvent> = fc.oneof(
  fc.tuple(base, state, state, fc.option(us)).map(([b, old, now, old_us]) => ({ type: 'state' as const, ...b, old, new: now, old_us })),
  fc.tuple(base, fc.integer({ min: 0, max: 200 }), us).map(([b, err, latency_us]) => ({ type: 'connect' as const, ...b, result: connectResult(err), latency_us })),
  fc.tuple(base, us).map(([b, queued_us]) => ({ type: 'accept' as const, ...b, queued_us })),
  fc
    .tuple(base, state, fc.option(us), u64, u64, fc.tuple(u32, u32, u32, u32))
    .map(([b, old, duration_us, tx_bytes, rx_bytes, [segs_out, segs_in, retrans, srtt_us]]) => ({
      type: 'close' as const,
      ...b,
      old,
      duration_us,
      tx_bytes,
      rx_bytes,
      segs_out,
      segs_in,
      retrans,
      srtt_us,
    })),
);

/** A valid stream of random events, with where each frame ends. */
const stream = fc.array(event, { maxLength: 12 }).map((events) => {
  const items: StreamItem[] = [header, ...events];
  const ends: number[] = [];
  let at = 0;
  for (const item of items) ends.push((at += encodeItems([item]).length));
  return { items, bytes: encodeItems(items), ends };
});

/** Whatever the input, decoding ends with items and at most one one-line error naming an offset inside it. */
function decodesSafely(bytes: Uint8Array): ReturnType<typeof decodeAll> {
  const r = decodeAll(bytes); // anything but a DecodeError escapes and fails the property
  if (r.error) {
    assert.ok(r.error instanceof DecodeError);
    assert.doesNotMatch(r.error.message, /\n/);
    assert.match(r.error.message, /byte \d+|empty/);
    assert.ok(r.error.offset >= 0 && r.error.offset <= bytes.length, `offset ${r.error.offset} of ${bytes.length}`);
  }
  return r;
}

test('streams of random events decode to exactly what was encoded', () => {
  fc.assert(
    fc.property(stream, ({ items, bytes }) => {
      const r = decodesSafely(bytes);
      assert.equal(r.error, undefined);
      assert.deepEqual(r.items, items);
    }),
    { numRuns: 500 },
  );
});

test('random bytes, alone or behind a valid header: a DecodeError or valid items, never a crash', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), (noise, withHeader) => {
      const bytes = withHeader ? Buffer.concat([HEADER_BYTES, noise]) : noise;
      const r = decodesSafely(bytes);
      if (!withHeader) assert.ok(r.error || r.items[0]?.type === 'header');
      else assert.deepEqual(r.items[0], header);
    }),
    { numRuns: 3000 },
  );
});

test('truncated streams: every whole frame before the cut, then a truncation error at the cut frame', () => {
  fc.assert(
    fc.property(stream, fc.nat(), ({ items, bytes, ends }, n) => {
      const cut = n % (bytes.length + 1);
      const r = decodesSafely(bytes.subarray(0, cut));
      const whole = ends.filter((e) => e <= cut).length;
      assert.deepEqual(r.items, items.slice(0, whole));
      if (cut === 0) assert.match(r.error!.message, /empty/);
      else if (ends.includes(cut)) assert.equal(r.error, undefined);
      else {
        assert.match(r.error!.message, /^truncated stream: the (frame|length prefix) at byte \d+/);
        assert.equal(r.error!.offset, whole === 0 ? 0 : ends[whole - 1]);
      }
    }),
    { numRuns: 2000 },
  );
});

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
);

function mutate(bytes: Uint8Array, edits: { kind: 'set' | 'insert' | 'delete'; at: number; value: number }[]): Uint8Array {
  const out = [...bytes];
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % out.length;
    if (e.kind === 'set' && out.length) out[at] = e.value;
    else if (e.kind === 'insert') out.splice(at, 0, e.value);
    else out.splice(at, 1);
  }
  return Uint8Array.from(out);
}

test('mutated streams (bytes set, inserted, deleted): valid items up to the first bad frame, then one error', () => {
  fc.assert(
    fc.property(stream, fc.array(mutation, { minLength: 1, maxLength: 6 }), ({ bytes }, edits) => {
      const changed = mutate(bytes, edits);
      const r = decodesSafely(changed);
      // what decoded is well-formed: it encodes again without complaint
      encodeItems(r.items);
    }),
    { numRuns: 3000 },
  );
});

test('the CLI on a sample of fuzzed input: exit 0 or 2, no hang, at most one line on stderr, never a stack trace', () => {
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 2048 }),
    fc.uint8Array({ maxLength: 512 }).map((noise) => Buffer.concat([HEADER_BYTES, noise])),
    fc.tuple(stream, fc.nat()).map(([s, n]) => s.bytes.subarray(0, n % (s.bytes.length + 1))),
    fc.tuple(stream, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([s, edits]) => mutate(s.bytes, edits)),
  );
  for (const json of [false, true]) {
    for (const bytes of fc.sample(input, { numRuns: 12 })) {
      const r = spawnSync(process.execPath, [CLI, 'decode', ...(json ? ['--json'] : [])], { input: bytes, timeout: 60000, encoding: 'utf8' });
      assert.equal(r.signal, null, 'decode did not finish in 60 s');
      const expected = decodeAll(bytes);
      const skipped = r.stderr.includes('frames of kinds this version does not know');
      assert.equal(r.status, expected.error ? 2 : 0, r.stderr);
      assert.ok(r.stderr === '' || /^nettrace: decode: [^\n]+\n$/.test(r.stderr), r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      if (expected.error) assert.equal(r.stderr, `nettrace: decode: ${expected.error.message}\n`);
      else if (!skipped) assert.equal(r.stderr, '');
      if (json) {
        const lines = r.stdout === '' ? [] : r.stdout.trimEnd().split('\n');
        assert.deepEqual(lines.map((l) => JSON.parse(l)), JSON.parse(JSON.stringify(expected.items)));
      }
    }
  }
});
