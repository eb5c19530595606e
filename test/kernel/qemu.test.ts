/**
 * Other kernels: Debian's bullseye 5.10, bookworm 6.1 and bookworm-backports
 * 6.12 under qemu each run the real addon and the committed BPF object
 * (test/kernel/qemu/guest.ts), make loopback connections inside the guest, and the
 * records that come back must be exactly what the core tests expect on this
 * machine. All have trampolines, so accepts come from fexit/inet_csk_accept:
 * with its pre-6.10 signature on 5.10 and 6.1 and its post-6.10 one (struct
 * proto_accept_arg) on 6.12.
 * The tracepoint fallback is run on each too.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT } from '../support/paths';
import { expectConnections, expectRefused } from '../support/expect';
import type { GuestReport } from './qemu/guest';
import { GuestResult, KernelSeries, runInGuest } from './qemu/vm';

// boot, BPF load and the traffic take ~10 s under KVM and about a minute under software emulation
const BUDGET_MS = 240_000;

interface KernelCase {
  series: KernelSeries;
  release: RegExp;
  /** [status, detail] of the udp hook: it counts through the sock_send_length/sock_recv_length tracepoints (6.3+). */
  udp: [string, RegExp];
  /** The state hook's detail: what it does instead of helpers the kernel lacks (bpf/compat.bpf.h). */
  state?: string;
}

const NATIVE_STATE = 'tp_btf/inet_sock_set_state';

const KERNELS: KernelCase[] = [
  // tracing programs there lack bpf_get_socket_cookie (5.12), bpf_get_current_task_btf and bpf_sk_storage_get (5.11): bpf/compat.bpf.h
  {
    series: '5.10',
    release: /^5\.10\.\d+-\d+-amd64$/,
    udp: ['unavailable', /no sock_send_length\/sock_recv_length tracepoints \(Linux 6\.3\+\)/],
    state:
      `${NATIVE_STATE}; socket ids are nettrace's own, not the kernel's cookies (no bpf_get_socket_cookie in tracing programs before 5.12); ` +
      'owners come from the bpf_get_current_* helpers (no bpf_get_current_task_btf before 5.11)',
  },
  { series: '6.1', release: /^6\.1\.\d+-\d+-amd64$/, udp: ['unavailable', /no sock_send_length\/sock_recv_length tracepoints \(Linux 6\.3\+\)/] },
  // the guest's init mounts cgroup v2 at /sys/fs/cgroup, so the first way, with sockets seen open and close, attaches
  {
    series: '6.12',
    release: /^6\.12\.\d+\+deb12-amd64$/,
    udp: ['attached', /^cgroup sock_create\/sock_release\/sendmsg\/recvmsg at the cgroup v2 root \/sys\/fs\/cgroup, tp_btf\/sock_send_length/],
  },
];

for (const k of KERNELS) {
  describe(`Linux ${k.series} in a qemu guest`, () => {
    let guest: GuestResult;
    let report: GuestReport;

    before(async () => {
      guest = await runInGuest({
        kernel: k.series,
        script: `cd '${ROOT}' && exec node dist/test/kernel/qemu/guest.js /run/out\n`,
        budgetMs: BUDGET_MS,
        read: ['result.json'],
      });
      const tail = (s: string) => s.split('\n').slice(-25).join('\n');
      assert.equal(guest.status, 0, `the guest run failed (${guest.accel}):\n${tail(guest.log)}\n--- console ---\n${tail(guest.console)}`);
      report = JSON.parse(guest.files.get('result.json')!) as GuestReport;
    });

    test('every hook attaches natively, accept by fexit/inet_csk_accept', (t) => {
      t.diagnostic(`guest ${report.kernel} under ${guest.accel}; udp ${report.hooks[3]?.status}: ${report.hooks[3]?.detail}`);
      assert.match(report.kernel, k.release);
      assert.deepEqual(
        report.hooks.map((h) => [h.name, h.status, h.name === 'udp' ? '' : h.detail]),
        [
          ['state', 'attached', k.state ?? NATIVE_STATE],
          ['accept', 'attached', 'fexit/inet_csk_accept'],
          ['snapshot', 'attached', 'iter/tcp, iter/udp'],
          ['udp', k.udp[0], ''],
          ['dns', 'unneeded', 'not needed by the events asked for'], // attached only when the dns events are asked for
        ],
      );
      assert.match(report.hooks[3].detail, k.udp[1]);
      assert.ok(report.snapshotSawListener, 'the iter/tcp snapshot lists the listener');
    });

    test('connections over IPv4 and IPv6: exact records, owners and state sequences', () => {
      assert.equal(report.connections.length, 2);
      for (const c of report.connections) {
        expectConnections(c.events, c.run);
        assert.equal(c.drops, 0);
      }
      assert.deepEqual(report.connections.map((c) => c.run.family), [4, 6]);
    });

    test('refused connects over IPv4 and IPv6', () => {
      assert.deepEqual(report.refused.map((r) => r.run.family), [4, 6]);
      for (const r of report.refused) expectRefused(r.events, r.run);
    });

    test('with fexit disabled, accepts come from the syscall tracepoints and are the same', () => {
      const accept = report.fallback.hooks.find((h) => h.name === 'accept');
      assert.deepEqual([accept?.status, accept?.detail.split(' (')[0]], ['fallback', 'tracepoints syscalls:sys_exit_accept{,4}']);
      expectConnections(report.fallback.events, report.fallback.run);
    });
  });
}
