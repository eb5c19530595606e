/**
 * A second kernel: Debian bookworm's 6.1 under qemu runs the real addon and the
 * committed BPF object (test/qemu/guest.ts), makes loopback connections inside
 * the guest, and the records that come back must be exactly what the core tests
 * expect on this machine. There fexit attaches, so accepts come from
 * fexit/inet_csk_accept with its pre-6.10 signature; the tracepoint fallback is
 * run there too.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT } from './helpers';
import { expectConnections, expectRefused } from './expect';
import type { GuestReport } from './qemu/guest';
import { GuestResult, runInGuest } from './qemu/vm';

// boot, BPF load and the traffic take ~10 s under KVM and about a minute under software emulation
const BUDGET_MS = 240_000;

let guest: GuestResult;
let report: GuestReport;

before(async () => {
  guest = await runInGuest({
    script: `cd '${ROOT}' && exec node dist/test/qemu/guest.js /run/out\n`,
    budgetMs: BUDGET_MS,
    read: ['result.json'],
  });
  const tail = (s: string) => s.split('\n').slice(-25).join('\n');
  assert.equal(guest.status, 0, `the guest run failed (${guest.accel}):\n${tail(guest.log)}\n--- console ---\n${tail(guest.console)}`);
  report = JSON.parse(guest.files.get('result.json')!) as GuestReport;
});

test('the guest runs a 6.1 kernel, where every hook attaches natively, accept by fexit', (t) => {
  t.diagnostic(`guest ${report.kernel} under ${guest.accel}`);
  assert.match(report.kernel, /^6\.1\.\d+-\d+-amd64$/);
  assert.deepEqual(
    report.hooks.map((h) => [h.name, h.status, h.name === 'udp' ? '' : h.detail]),
    [
      ['state', 'attached', 'tp_btf/inet_sock_set_state'],
      ['accept', 'attached', 'fexit/inet_csk_accept'],
      ['snapshot', 'attached', 'iter/tcp, iter/udp'],
      ['udp', 'unavailable', ''],
    ],
  );
  // 6.1 predates the sock_send_length/sock_recv_length tracepoints (6.3) that count UDP traffic
  assert.match(report.hooks[3].detail, /no sock_send_length\/sock_recv_length tracepoints \(Linux 6\.3\+\)/);
  assert.ok(report.snapshotSawListener, 'the iter/tcp snapshot lists the listener');
});

test('connections in the guest over IPv4 and IPv6: exact records, owners and state sequences', () => {
  assert.equal(report.connections.length, 2);
  for (const c of report.connections) {
    expectConnections(c.events, c.run);
    assert.equal(c.drops, 0);
  }
  assert.deepEqual(report.connections.map((c) => c.run.family), [4, 6]);
});

test('refused connects in the guest over IPv4 and IPv6', () => {
  assert.deepEqual(report.refused.map((r) => r.run.family), [4, 6]);
  for (const r of report.refused) expectRefused(r.events, r.run);
});

test('with fexit disabled in the guest, accepts come from the syscall tracepoints and are the same', () => {
  const accept = report.fallback.hooks.find((h) => h.name === 'accept');
  assert.deepEqual([accept?.status, accept?.detail.split(' (')[0]], ['fallback', 'tracepoints syscalls:sys_exit_accept{,4}']);
  expectConnections(report.fallback.events, report.fallback.run);
});
