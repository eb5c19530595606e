/**
 * The flow table's slot storage under a property-based fuzzer: random runs of
 * adds, finds, moves and removes, checked after every step against a Map and
 * an array that do the same the slow way. Cookies are drawn from a few values
 * 2^32 apart (one home in the index) and from a short counter range (neighbours
 * in the index), so probe chains collide, wrap around the end of the index and
 * are shifted back on removal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Slots } from '../../src/flows/slots';

type Op = { op: 'add' | 'remove' | 'back' | 'find'; cookie: number };

const cookie = fc.oneof(
  fc.integer({ min: 1, max: 40 }),
  fc.integer({ min: 0, max: 7 }).map((k) => 5 + k * 2 ** 32),
  fc.integer({ min: 2 ** 32 - 8, max: 2 ** 32 + 8 }),
);
const op: fc.Arbitrary<Op> = fc.record({ op: fc.constantFrom<Op['op']>('add', 'remove', 'back', 'find'), cookie });

function order(slots: Slots): number[] {
  const out: number[] = [];
  for (let s = slots.after(-1); s !== -1; s = slots.after(s)) out.push(slots.cookie(s));
  return out;
}

test('slots find, order and free exactly what a Map and a list would, whatever the collisions', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 24 }), fc.array(op, { minLength: 20, maxLength: 300, size: 'max' }), (capacity, ops) => {
      const slots = new Slots(capacity);
      const model = new Map<number, number>(); // cookie -> slot
      let list: number[] = []; // cookies, first placed first
      for (const { op, cookie } of ops) {
        const s = model.get(cookie);
        if (op === 'add' && s === undefined && model.size < capacity) {
          model.set(cookie, slots.add(cookie));
          list.push(cookie);
        } else if (op === 'remove' && s !== undefined) {
          slots.remove(s);
          model.delete(cookie);
          list = list.filter((c) => c !== cookie);
        } else if (op === 'back' && s !== undefined) {
          slots.moveToBack(s);
          list = [...list.filter((c) => c !== cookie), cookie];
        }
        assert.equal(slots.find(cookie), model.get(cookie) ?? -1);
        assert.equal(slots.size, model.size);
        assert.deepEqual(order(slots), list);
        for (const [c, slot] of model) assert.equal(slots.find(c), slot, `cookie ${c} lost after ${op} ${cookie}`);
      }
      // every slot in use is distinct and within the capacity
      const used = [...model.values()];
      assert.equal(new Set(used).size, used.length);
      assert.ok(used.every((x) => x >= 0 && x < capacity));
    }),
    { numRuns: 400 },
  );
});

test('a full set of slots refuses one more, and frees a slot for reuse', () => {
  const slots = new Slots(3);
  const a = slots.add(10);
  slots.add(11);
  slots.add(12);
  assert.throws(() => slots.add(13), /full/);
  slots.remove(a);
  const d = slots.add(13);
  assert.equal(d, a);
  assert.deepEqual(order(slots), [11, 12, 13]);
  assert.equal(slots.find(10), -1);
  assert.throws(() => new Slots(0), /at least one flow/);
});
