/**
 * Where the flow table keeps its flows: a fixed number of slots, found by
 * socket cookie through an open-addressing index (linear probing), kept in a
 * doubly linked order for eviction and iteration. All of it lives in typed
 * arrays made once, so finding, adding, moving and removing a flow allocate
 * nothing: at connection churn the table takes millions of records a second,
 * and a Map of objects spent most of that time hashing and collecting garbage.
 *
 * Slots only know cookies; what a flow holds lives in the table's own
 * per-slot columns, indexed by the same slot number.
 */

const NONE = -1;

export class Slots {
  /** Slot + 1 at each position; 0 marks an empty position. Twice the capacity, a power of two. */
  private readonly index: Int32Array;
  private readonly mask: number;
  private readonly shift: number;
  private readonly cookies: Float64Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  /** Free slots, as a stack. */
  private readonly free: Int32Array;
  private freeTop: number;
  /** The first slot in order (the least recently placed), NONE when empty. */
  private first = NONE;
  private last = NONE;
  size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`a flow table needs room for at least one flow, not ${capacity}`);
    let bits = 1;
    while (1 << bits < capacity * 2) bits++;
    this.index = new Int32Array(1 << bits);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
    this.cookies = new Float64Array(capacity);
    this.prev = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.freeTop = capacity;
  }

  /**
   * Cookies come from one counter: multiplying spreads neighbours over the
   * index (Fibonacci hashing). Its low 32 bits are enough to hash on; cookies
   * 2^32 apart share a home and are told apart by the comparison.
   */
  private home(cookie: number): number {
    return Math.imul(cookie >>> 0, 0x9e3779b1) >>> this.shift;
  }

  /** The slot holding `cookie`, or -1. */
  find(cookie: number): number {
    const index = this.index;
    for (let i = this.home(cookie); ; i = (i + 1) & this.mask) {
      const s = index[i] - 1;
      if (s < 0 || this.cookies[s] === cookie) return s;
    }
  }

  cookie(slot: number): number {
    return this.cookies[slot];
  }

  /** The slot in order after `slot` (or the first with -1); -1 at the end. */
  after(slot: number): number {
    return slot === NONE ? this.first : this.next[slot];
  }

  /** Takes a free slot for `cookie`, which must be absent, and puts it last in order. */
  add(cookie: number): number {
    if (this.freeTop === 0) throw new Error('flow slots are full');
    const s = this.free[--this.freeTop];
    this.cookies[s] = cookie;
    let i = this.home(cookie);
    while (this.index[i] !== 0) i = (i + 1) & this.mask;
    this.index[i] = s + 1;
    this.link(s);
    this.size++;
    return s;
  }

  /** Puts `slot` last in order. */
  moveToBack(slot: number): void {
    if (slot === this.last) return;
    this.unlink(slot);
    this.link(slot);
  }

  /** Frees `slot`: its cookie is no longer found. */
  remove(slot: number): void {
    const index = this.index;
    const mask = this.mask;
    let i = this.home(this.cookies[slot]);
    while (index[i] !== slot + 1) i = (i + 1) & mask;
    // backward-shift deletion: close the gap so every later probe still reaches its entry
    for (;;) {
      index[i] = 0;
      let j = i;
      for (;;) {
        j = (j + 1) & mask;
        const e = index[j];
        if (e === 0) {
          this.unlink(slot);
          this.free[this.freeTop++] = slot;
          this.size--;
          return;
        }
        const h = this.home(this.cookies[e - 1]);
        const stays = i <= j ? i < h && h <= j : i < h || h <= j;
        if (!stays) {
          index[i] = e;
          i = j;
          break;
        }
      }
    }
  }

  private link(s: number): void {
    this.prev[s] = this.last;
    this.next[s] = NONE;
    if (this.last === NONE) this.first = s;
    else this.next[this.last] = s;
    this.last = s;
  }

  private unlink(s: number): void {
    const p = this.prev[s];
    const n = this.next[s];
    if (p === NONE) this.first = n;
    else this.next[p] = n;
    if (n === NONE) this.last = p;
    else this.prev[n] = p;
  }
}
