/**
 * What the kernel must produce for the fixtures' connections, exactly: shared
 * by the tests on this machine's kernel and on the qemu guest's.
 */
import assert from 'node:assert/strict';
import { NettraceEvent } from '../src';
import { RecordCursor } from '../src/record-cursor';
import { Kind } from '../src/layout';
import { stateName } from '../src/tcp';

export interface Owner {
  pid: number;
  comm: string;
}

export interface ConnectionRun {
  family: 4 | 6;
  host: string;
  port: number;
  /** Connections made, bytes each sent and each answer's size. */
  count: number;
  send: number;
  reply: number;
  /** The listener's process, which accepts. */
  server: Owner;
  /** The fixture client, and the local ports it used. */
  client: Owner & { ports: number[] };
}

/**
 * A socket's transitions, less the kernel's X>X calls: close() right after
 * shutdown(), before the peer's ACK, sets LAST_ACK (or FIN_WAIT1) again, and the
 * tracepoint fires for it. Whether it happens is a matter of timing.
 */
const REPEATED = new Set(['LAST_ACK', 'FIN_WAIT1']);
export const isRepeat = (e: NettraceEvent) => e.type === 'state' && e.old === e.new && REPEATED.has(e.old);
/** The same, on the record the cursor is at. */
export const isRepeatRecord = (c: RecordCursor) => c.kind === Kind.State && c.oldState === c.newState && REPEATED.has(stateName(c.oldState));
const repeats = (events: NettraceEvent[]) => events.filter(isRepeat);

function transitions(events: NettraceEvent[], sock: number): string[] {
  return events.filter((e) => e.type === 'state' && e.sock === sock && !isRepeat(e)).map((e) => (e.type === 'state' ? `${e.old}>${e.new}` : ''));
}

/** Per connection: 10 transitions, connect, accept and two closes, every one attributed. */
export function expectConnections(events: NettraceEvent[], run: ConnectionRun, accepts = true): void {
  const { family, host, count: N, send: SEND, reply: REPLY, server, client } = run;
  const clientPorts = new Set(client.ports);
  const connects = events.filter((e) => e.type === 'connect');
  assert.equal(connects.length, N);
  for (const e of connects) {
    assert.equal(e.type === 'connect' && e.result, 'ok');
    assert.equal(e.pid, client.pid);
    assert.equal(e.comm, client.comm);
    assert.equal(e.family, family);
    assert.equal(e.daddr, host);
    assert.equal(e.dport, run.port);
    assert.ok(clientPorts.has(e.sport), `connect from port ${e.sport} the client did not use`);
    assert.ok(e.type === 'connect' && e.latency_us > 0);
  }
  assert.equal(new Set(connects.map((e) => e.sport)).size, N);

  const acceptRecords = events.filter((e) => e.type === 'accept');
  assert.equal(acceptRecords.length, accepts ? N : 0);
  for (const e of acceptRecords) {
    assert.equal(e.pid, server.pid);
    assert.equal(e.comm, server.comm);
    assert.equal(e.saddr, host);
    assert.equal(e.sport, run.port);
    assert.ok(clientPorts.has(e.dport));
  }

  const active = new Set(connects.map((e) => e.sock));
  const passive = new Set(events.filter((e) => e.type === 'state' && e.old === 'LISTEN').map((e) => e.sock));
  assert.equal(passive.size, N);
  for (const sock of active) {
    assert.deepEqual(transitions(events, sock), [
      'CLOSE>SYN_SENT',
      'SYN_SENT>ESTABLISHED',
      'ESTABLISHED>FIN_WAIT1',
      'FIN_WAIT1>FIN_WAIT2',
      'FIN_WAIT2>CLOSE',
    ]);
    for (const e of events.filter((e) => e.sock === sock)) assert.equal(e.pid, client.pid, `${e.type} of a client socket`);
  }
  for (const sock of passive) {
    assert.deepEqual(transitions(events, sock), [
      'LISTEN>SYN_RECV',
      'SYN_RECV>ESTABLISHED',
      'ESTABLISHED>CLOSE_WAIT',
      'CLOSE_WAIT>LAST_ACK',
      'LAST_ACK>CLOSE',
    ]);
    // softirq runs the handshake: no owner until accept() names one, then every record has it
    const own = events.filter((e) => e.sock === sock).map((e) => e.pid);
    const later = accepts ? server.pid : null;
    assert.deepEqual(own, [null, null, ...own.slice(2).map(() => later)]);
    assert.equal(own.length, (accepts ? 7 : 6) + repeats(events.filter((e) => e.sock === sock)).length);
  }

  const closes = events.filter((e) => e.type === 'close');
  assert.equal(closes.length, 2 * N);
  for (const e of closes) {
    assert.ok(e.type === 'close');
    if (active.has(e.sock)) {
      assert.deepEqual([e.pid, e.tx_bytes, e.rx_bytes, e.old], [client.pid, SEND, REPLY, 'FIN_WAIT2']);
      assert.ok(clientPorts.has(e.sport), 'close keeps the local port the kernel already released');
    } else {
      assert.ok(passive.has(e.sock));
      assert.deepEqual([e.pid, e.tx_bytes, e.rx_bytes, e.old], [accepts ? server.pid : null, REPLY, SEND, 'LAST_ACK']);
    }
    assert.ok(e.duration_us !== null && e.duration_us > 0);
    assert.ok(e.srtt_us > 0);
    // loopback loses nothing, but on a loaded machine the tail-loss probe or RTO timer can resend
    assert.ok(e.retrans <= e.segs_out, `retrans ${e.retrans} of ${e.segs_out} segments`);
  }
  const perConnection = accepts ? 14 : 13;
  assert.equal(events.length - repeats(events).length, N * perConnection, 'per connection: 10 transitions, connect, accept, 2 closes');
}

/** A connect to a port nothing listens on, by `owner`: refused, two transitions, an empty close. */
export function expectRefused(events: NettraceEvent[], run: { family: 4 | 6; host: string; port: number; owner: Owner }): void {
  const connects = events.filter((e) => e.type === 'connect');
  assert.equal(connects.length, 1);
  const c = connects[0];
  assert.ok(c.type === 'connect');
  assert.deepEqual(
    [c.result, c.pid, c.comm, c.family, c.daddr, c.dport],
    ['refused', run.owner.pid, run.owner.comm, run.family, run.host, run.port],
  );
  assert.deepEqual(transitions(events, c.sock), ['CLOSE>SYN_SENT', 'SYN_SENT>CLOSE']);
  const closes = events.filter((e) => e.type === 'close');
  assert.equal(closes.length, 1);
  assert.ok(closes[0].type === 'close' && closes[0].tx_bytes === 0 && closes[0].rx_bytes === 0);
}
