/**
 * The stream's JSON lines, written straight from the cursor, against the event
 * objects' JSON: every byte of every record kind random (hostile process names,
 * IPv4 and IPv6, absent owners, zero and huge numbers), the two must agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RecordCursor } from '../src/record-cursor';
import { Clock, toEvent } from '../src/events';
import { JsonLines } from '../src/cli/json-line';
import { Accept, Close, Connect, Head, Kind, State, Udp } from '../src/layout';

const sizes: Record<number, number> = { [Kind.State]: State.SIZE, [Kind.Connect]: Connect.SIZE, [Kind.Accept]: Accept.SIZE, [Kind.Close]: Close.SIZE, [Kind.Udp]: Udp.SIZE };

/** A record of `kind` whose every other byte is random; u64 fields kept below 2^53, as the kernel's are. */
const record = fc
  .tuple(fc.constantFrom(Kind.State, Kind.Connect, Kind.Accept, Kind.Close, Kind.Udp), fc.uint8Array({ minLength: 160, maxLength: 160 }), fc.constantFrom(4, 6), fc.boolean())
  .map(([kind, bytes, family, owned]) => {
    const size = sizes[kind];
    const b = Buffer.from(bytes.subarray(0, size));
    b.writeUInt16LE(kind, Head.kind);
    b.writeUInt16LE(size, Head.size);
    for (let at = 8; at + 8 <= size; at += 8) (b[at + 6] &= 0x1f), (b[at + 7] = 0); // every 8-byte word below 2^53
    b[Head.sock.family] = family;
    b.writeUInt32LE(owned ? 1 : 0, Head.owner.known);
    return b;
  });

test('a JSON line written from the cursor equals JSON.stringify of the event', () => {
  const clock = new Clock();
  const lines = new JsonLines(clock);
  const c = new RecordCursor();
  fc.assert(
    fc.property(fc.array(record, { minLength: 1, maxLength: 8 }), (records) => {
      c.reset(Buffer.concat(records));
      while (c.next()) assert.equal(lines.line(c), JSON.stringify(toEvent(c, clock)));
    }),
    { numRuns: 2000 },
  );
});
