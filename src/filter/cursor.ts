/**
 * Lets a filter judge the record under a RecordCursor in place: one subject
 * wraps whichever cursor it is handed, and answers from the cursor's getters
 * and the raw address bytes, so filtering a batch allocates nothing.
 *
 * The state a record stands for:
 *   state   its new state
 *   connect ESTABLISHED when it succeeded, CLOSE when it failed (the socket
 *           went SYN_SENT -> CLOSE)
 *   accept  ESTABLISHED, which every accepted socket has reached
 *   close   CLOSE
 *   udp     CLOSE (UNCONN), or ESTABLISHED for a connected socket's close
 */
import { inPrefix } from './addr';
import { Prefix, Side } from './ast';
import { FilterPredicate } from './compile';
import { FilterSubject } from './subject';
import { Head, Kind } from '../layout';
import { TCP_STATES } from '../tcp';

const ESTABLISHED = TCP_STATES.indexOf('ESTABLISHED');
const CLOSE = TCP_STATES.indexOf('CLOSE');
const UNKNOWN = TCP_STATES.indexOf('UNKNOWN');

/** The part of RecordCursor a filter reads. */
export interface FilterableCursor {
  readonly kind: number;
  readonly family: 4 | 6;
  readonly sport: number;
  readonly dport: number;
  readonly hasOwner: boolean;
  readonly pid: number;
  readonly cgroup: number;
  readonly newState: number;
  readonly err: number;
  commEquals(name: Buffer): boolean;
  /** The batch being walked; the current record starts at `offset` in it. */
  readonly batch: Buffer;
  readonly offset: number;
}

export class CursorSubject implements FilterSubject {
  cursor: FilterableCursor;

  constructor(cursor: FilterableCursor) {
    this.cursor = cursor;
  }

  get proto(): 'tcp' | 'udp' {
    return this.cursor.kind === Kind.Udp ? 'udp' : 'tcp';
  }
  get family(): 4 | 6 {
    return this.cursor.family;
  }
  get state(): number {
    const c = this.cursor;
    switch (c.kind) {
      case Kind.State:
        return c.newState;
      case Kind.Connect:
        return c.err === 0 ? ESTABLISHED : CLOSE;
      case Kind.Accept:
        return ESTABLISHED;
      case Kind.Close:
        return CLOSE;
      case Kind.Udp:
        return c.dport !== 0 ? ESTABLISHED : CLOSE;
      default:
        return UNKNOWN;
    }
  }
  get sport(): number {
    return this.cursor.sport;
  }
  get dport(): number {
    return this.cursor.dport;
  }
  get pid(): number | null {
    return this.cursor.hasOwner ? this.cursor.pid : null;
  }
  get cgroup(): number | null {
    return this.cursor.hasOwner ? this.cursor.cgroup : null;
  }
  commEquals(name: Buffer): boolean {
    return this.cursor.hasOwner && this.cursor.commEquals(name);
  }
  addrIn(side: Side, prefix: Prefix): boolean {
    const c = this.cursor;
    if (c.family !== prefix.family) return false;
    return inPrefix(c.batch, c.offset + (side === 'src' ? Head.sock.saddr : Head.sock.daddr), prefix);
  }
}

/** A cursor filter (RecordCursor.filter) from a compiled filter. */
export function cursorFilter(match: FilterPredicate): (c: FilterableCursor) => boolean {
  let subject: CursorSubject | undefined;
  return (c) => {
    if (subject === undefined) subject = new CursorSubject(c);
    else subject.cursor = c;
    return match(subject);
  };
}
