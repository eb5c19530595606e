/**
 * A record's JSON line, written as bytes straight from the cursor: exactly
 * what JSON.stringify(toEvent(c)) gives (test/unit/json-line.test.ts holds the two
 * together), without the event object, the generic serializer or a string per
 * line, which at churn were most of `nettrace --json`'s cost per record (and
 * most of that was V8 collecting them).
 */
import { RecordCursor } from '../record-cursor';
import { Clock } from '../events';
import { CommNames } from '../flows/comm-names';
import { CgroupResolver } from '../flows/cgroups';
import { Kind, UdpEvent } from '../layout';
import { connectResult, TCP_STATES } from '../tcp';

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const STATES = TCP_STATES.map((s) => bytes(`"${s}"`));
const UNKNOWN_STATE = bytes('"UNKNOWN"');
const TYPES: Record<number, Buffer> = {
  [Kind.State]: bytes('{"type":"state","ts":'),
  [Kind.Connect]: bytes('{"type":"connect","ts":'),
  [Kind.Accept]: bytes('{"type":"accept","ts":'),
  [Kind.Close]: bytes('{"type":"close","ts":'),
  [Kind.Udp]: bytes('{"type":"udp","ts":'),
};
const K = {
  cpu: bytes(',"cpu":'),
  sock: bytes(',"sock":'),
  netns: bytes(',"netns":'),
  pid: bytes(',"pid":'),
  tid: bytes(',"tid":'),
  uid: bytes(',"uid":'),
  comm: bytes(',"comm":'),
  cgroup: bytes(',"cgroup":'),
  noOwner: bytes(',"pid":null,"tid":null,"uid":null,"comm":null,"cgroup":null'),
  family: bytes(',"family":'),
  saddr: bytes(',"saddr":'),
  sport: bytes(',"sport":'),
  daddr: bytes(',"daddr":'),
  dport: bytes(',"dport":'),
  old: bytes(',"old":'),
  new: bytes(',"new":'),
  oldUs: bytes(',"old_us":'),
  result: bytes(',"result":'),
  latencyUs: bytes(',"latency_us":'),
  queuedUs: bytes(',"queued_us":'),
  durationUs: bytes(',"duration_us":'),
  txBytes: bytes(',"tx_bytes":'),
  rxBytes: bytes(',"rx_bytes":'),
  segsOut: bytes(',"segs_out":'),
  segsIn: bytes(',"segs_in":'),
  retrans: bytes(',"retrans":'),
  srttUs: bytes(',"srtt_us":'),
  event: bytes(',"event":'),
  open: bytes('"open"'),
  close: bytes('"close"'),
  txDatagrams: bytes(',"tx_datagrams":'),
  rxDatagrams: bytes(',"rx_datagrams":'),
  drops: bytes(',"drops":'),
  container: bytes(',"container":'),
  null: bytes('null'),
  end: bytes('}\n'),
};

/** The longest line a record makes: every field at its widest, a comm of escapes, IPv6 addresses. */
const MAX_LINE = 1024;

/**
 * Lines written into one growing buffer. Each take() hands over a buffer of
 * its own (an output may still hold the last one), sized by what the last
 * batch needed.
 */
export class LineBuffer {
  private static hint = 64 * 1024;
  buf = Buffer.allocUnsafe(LineBuffer.hint);
  at = 0;

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  /** A text line (of any characters) and its newline. */
  add(line: string): void {
    this.room(line.length * 3 + 1); // a UTF-16 unit takes at most 3 bytes of UTF-8
    this.at += this.buf.write(line, this.at);
    this.buf[this.at++] = 0x0a;
  }

  take(): Buffer {
    LineBuffer.hint = Math.max(64 * 1024, this.at);
    return this.buf.subarray(0, this.at);
  }

  put(b: Buffer): void {
    const buf = this.buf;
    let at = this.at;
    // a loop beats a native copy for the few bytes of a key
    for (let i = 0; i < b.length; i++) buf[at++] = b[i];
    this.at = at;
  }

  /** A whole number of at most 2^53, as its digits. */
  int(n: number): void {
    if (n > Number.MAX_SAFE_INTEGER) return this.ascii(String(n));
    const buf = this.buf;
    if (n < 10) {
      buf[this.at++] = 48 + n;
      return;
    }
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    let at = this.at + digits;
    this.at = at;
    while (n >= 1) {
      const q = Math.floor(n / 10);
      buf[--at] = 48 + (n - q * 10);
      n = q;
    }
  }

  /** Any number, as JSON.stringify writes it. */
  num(n: number): void {
    if (Number.isInteger(n) && n >= 0 && n <= Number.MAX_SAFE_INTEGER) this.int(n);
    else this.ascii(String(n));
  }

  /**
   * Milliseconds with at most three decimals, as JSON.stringify writes them:
   * the whole part, then the thousandths without trailing zeros. No shorter
   * decimal reads back as the same double, so this is the shortest form too.
   */
  ms(n: number): void {
    const k = Math.round(n * 1000);
    if (!(n >= 0) || k > Number.MAX_SAFE_INTEGER) return this.num(n);
    const whole = Math.floor(k / 1000);
    let frac = k - whole * 1000;
    this.int(whole);
    if (frac === 0) return;
    const buf = this.buf;
    buf[this.at++] = 0x2e; // .
    buf[this.at++] = 48 + Math.floor(frac / 100);
    frac %= 100;
    if (frac === 0) return;
    buf[this.at++] = 48 + Math.floor(frac / 10);
    frac %= 10;
    if (frac !== 0) buf[this.at++] = 48 + frac;
  }

  /** A string of ASCII characters only. */
  ascii(s: string): void {
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.at = at;
  }
}

const us = (ns: number): number => Math.round(ns / 1000);

export class JsonLines {
  private readonly comms = new CommNames();
  /** Each name as JSON, encoded once; addresses likewise, by their string. */
  private readonly quoted = new Map<string, Buffer>();
  private readonly addrs = new Map<string, Buffer>();

  /** Each cgroup's container as JSON, for close records (bounded like the names). */
  private readonly containers = new Map<number, Buffer>();

  /** With `cgroups`, close records end with the owner's `container` (null when unknown). */
  constructor(
    private readonly clock: Clock,
    private readonly cgroups?: CgroupResolver,
  ) {}

  /** Writes the record's line and its newline. */
  write(c: RecordCursor, out: LineBuffer): void {
    const kind = c.kind;
    const type = TYPES[kind];
    if (type === undefined) throw new Error(`unknown record kind ${kind} at byte ${c.offset}`);
    out.room(MAX_LINE);
    out.put(type);
    out.ms(this.clock.wallMs(c.tsNs));
    out.put(K.cpu);
    out.int(c.cpu);
    out.put(K.sock);
    out.int(c.cookie);
    out.put(K.netns);
    out.int(c.netns);
    this.owner(c, out);
    out.put(K.family);
    out.int(c.family);
    out.put(K.saddr);
    out.put(this.addr(c.saddr));
    out.put(K.sport);
    out.int(c.sport);
    out.put(K.daddr);
    out.put(this.addr(c.daddr));
    out.put(K.dport);
    out.int(c.dport);
    if (kind === Kind.State) {
      out.put(K.old);
      out.put(STATES[c.oldState] ?? UNKNOWN_STATE);
      out.put(K.new);
      out.put(STATES[c.newState] ?? UNKNOWN_STATE);
      out.put(K.oldUs);
      this.orNull(c.inOldNs, out);
    } else if (kind === Kind.Connect) {
      out.put(K.result);
      out.ascii(`"${connectResult(c.err)}"`);
      out.put(K.latencyUs);
      out.int(us(c.latencyNs));
    } else if (kind === Kind.Accept) {
      out.put(K.queuedUs);
      out.int(us(c.queuedNs));
    } else if (kind === Kind.Close) {
      out.put(K.old);
      out.put(STATES[c.oldState] ?? UNKNOWN_STATE);
      out.put(K.durationUs);
      this.orNull(c.lifetimeNs, out);
      this.counters(c, out);
      out.put(K.segsOut);
      out.int(c.segsOut);
      out.put(K.segsIn);
      out.int(c.segsIn);
      out.put(K.retrans);
      out.int(c.retrans);
      out.put(K.srttUs);
      out.int(c.srttUs);
      this.container(c, out);
    } else {
      out.put(K.event);
      out.put(c.udpEvent === UdpEvent.Open ? K.open : K.close);
      out.put(K.durationUs);
      this.orNull(c.lifetimeNs, out);
      this.counters(c, out);
      out.put(K.txDatagrams);
      out.int(c.txDatagrams);
      out.put(K.rxDatagrams);
      out.int(c.rxDatagrams);
      out.put(K.drops);
      out.int(c.drops);
      if (c.udpEvent !== UdpEvent.Open) this.container(c, out);
    }
    out.put(K.end);
  }

  /** The line as a string (for tests and single records). */
  line(c: RecordCursor): string {
    const out = new LineBuffer();
    this.write(c, out);
    return out.take().toString('utf8', 0, out.at - 1);
  }

  private counters(c: RecordCursor, out: LineBuffer): void {
    out.put(K.txBytes);
    out.int(c.txBytes);
    out.put(K.rxBytes);
    out.int(c.rxBytes);
  }

  private container(c: RecordCursor, out: LineBuffer): void {
    if (!this.cgroups) return;
    out.put(K.container);
    if (!c.hasOwner) return out.put(K.null);
    const id = c.cgroup;
    let json = this.containers.get(id);
    if (json === undefined) {
      const found = this.cgroups.lookup(id);
      json = bytes(JSON.stringify(found ?? null));
      if (this.containers.size >= 4096) this.containers.clear();
      if (found) this.containers.set(id, json); // an id not found yet may be found after the next walk
    }
    out.room(json.length + 2);
    out.put(json);
  }

  private orNull(ns: number, out: LineBuffer): void {
    if (ns) out.int(us(ns));
    else out.put(K.null);
  }

  private owner(c: RecordCursor, out: LineBuffer): void {
    if (!c.hasOwner) return out.put(K.noOwner);
    const pid = c.pid;
    out.put(K.pid);
    out.int(pid);
    out.put(K.tid);
    out.int(c.tid);
    out.put(K.uid);
    out.int(c.uid);
    out.put(K.comm);
    const name = this.comms.name(c, pid);
    let quoted = this.quoted.get(name);
    if (quoted === undefined) {
      if (this.quoted.size >= 4096) this.quoted.clear(); // bounded, however many names come and go
      this.quoted.set(name, (quoted = bytes(JSON.stringify(name))));
    }
    out.put(quoted);
    out.put(K.cgroup);
    out.int(c.cgroup);
  }

  private addr(a: string): Buffer {
    let b = this.addrs.get(a);
    if (b === undefined) {
      if (this.addrs.size >= 4096) this.addrs.clear(); // bounded, whatever the traffic
      this.addrs.set(a, (b = bytes(`"${a}"`)));
    }
    return b;
  }
}
