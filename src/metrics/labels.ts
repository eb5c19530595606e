/**
 * Bounded label cardinality: at most `limit` values of a label (a process name,
 * a remote host) get series of their own; the rest are counted under `other`.
 *
 * Counters must never go down, so a value's series is never moved into `other`
 * or out of it: a value keeps its place while it is active, and a place idle for
 * `idleMs` is given up (its series end) to the busiest of the waiting values,
 * whose series then start from zero. What a value did while waiting stays in
 * `other`. So the held values drift towards the top-N by activity.
 */
export const OTHER = 'other';

export class LabelBudget {
  /** Held value -> last time it was active (ms). */
  private readonly held = new Map<string, number>();
  /** Waiting value -> activity while it waited; bounded, the least active leave. */
  private readonly waiting = new Map<string, number>();

  constructor(
    readonly limit: number,
    readonly idleMs: number,
  ) {}

  /** The label value to count `amount` of `value`'s activity under, at `now`. */
  label(value: string, amount: number, now: number): string {
    if (this.held.has(value) || this.held.size < this.limit) {
      this.held.set(value, now);
      return value;
    }
    this.waiting.set(value, (this.waiting.get(value) ?? 0) + amount);
    if (this.waiting.size > this.limit * 4) this.waiting.delete(this.busiestWaiting(true));
    return OTHER;
  }

  /** Gives up the places idle at `now`, promotes waiting values into them, and returns the values given up. */
  sweep(now: number): string[] {
    const released: string[] = [];
    for (const [value, last] of this.held) {
      if (now - last >= this.idleMs) {
        this.held.delete(value);
        released.push(value);
      }
    }
    while (this.held.size < this.limit && this.waiting.size > 0) {
      const next = this.busiestWaiting(false);
      this.waiting.delete(next);
      this.held.set(next, now);
    }
    return released;
  }

  private busiestWaiting(least: boolean): string {
    let best = '';
    let bestAmount = least ? Infinity : -Infinity;
    for (const [value, amount] of this.waiting) {
      if (least ? amount < bestAmount : amount > bestAmount) {
        best = value;
        bestAmount = amount;
      }
    }
    return best;
  }
}
