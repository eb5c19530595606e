/**
 * What nettrace says when the machine lacks something, each run in a private
 * mount namespace (unshare -m) that hides it, so the host is left as it is:
 * no cgroup v2 hierarchy (one line: UDP opens and closes are lost, counting and
 * the rest still work), cgroup v2 mounted somewhere unusual (found there, all of
 * UDP works), and no BTF (one line, exit 1, and ENOBTF from the library).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { captured } from '../support/cli';
import { CLI, ROOT } from '../support/paths';
import { close, listen } from '../support/sockets';

const CGROUP2 = fs
  .readFileSync('/proc/self/mounts', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .filter((f) => f[2] === 'cgroup2')
  .map((f) => f[1]);
const INDEX = path.join(ROOT, 'dist', 'src', 'index.js');

/** `script` (sh) in a private mount namespace; its output and exit code. */
async function hidden(script: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-ec', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const io = captured(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out: io.out(), err: io.err() };
}

const unmountCgroup2 = CGROUP2.map((dir) => `umount -l '${dir}'`).join('\n');
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

test('without a cgroup v2 mount: one line says UDP opens and closes are lost and what still works; the rest runs', async () => {
  assert.ok(CGROUP2.length > 0, 'this machine mounts cgroup v2 somewhere');
  const server = await listen('127.0.0.1', 1, 1);
  try {
    const r = await hidden(`${unmountCgroup2}\nexec ${q(process.execPath)} ${q(CLI)} flows -l -t 'sport = :${server.port}'`);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.err,
      'nettrace: UDP open and close events are unavailable: no cgroup v2 hierarchy is mounted; UDP sockets are still counted and listed\n',
    );
    assert.match(r.out, new RegExp(`^LISTEN .*127\\.0\\.0\\.1:${server.port} .*pid=${process.pid}`, 'm'));
  } finally {
    await close(server);
  }
});

test('cgroup v2 mounted somewhere else: found there, and UDP sockets are seen open and close', async () => {
  const elsewhere = fs.mkdtempSync('/tmp/ntk-cgroup2-');
  // a child in the hidden namespace: starts a tracer, opens, uses and closes a UDP socket, prints what was seen
  const js = `
    const { Tracer } = require(${JSON.stringify(INDEX)});
    const dgram = require('node:dgram');
    const t = Tracer.start({ disable: ['accept'] });
    const seen = [];
    const { toEvent, Clock } = require(${JSON.stringify(INDEX)});
    const clock = new Clock();
    t.onBatch((c) => { while (c.next()) { const e = toEvent(c, clock); if (e.type === 'udp' && e.pid === process.pid) seen.push(e); } });
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.send(Buffer.alloc(100), port, '127.0.0.1', () => s.close(() => setTimeout(async () => {
        await t.stop();
        const udp = t.hooks.find((h) => h.name === 'udp');
        process.stdout.write(JSON.stringify({ udp, port, events: seen.map((e) => [e.event, e.sport, e.tx_bytes]) }));
      }, 300)));
    });`;
  try {
    const r = await hidden(`${unmountCgroup2}\nmount -t cgroup2 none ${q(elsewhere)}\nexec ${q(process.execPath)} -e ${q(js)}`);
    assert.equal(r.code, 0, r.err);
    const { udp, port, events } = JSON.parse(r.out) as { udp: { status: string; detail: string }; port: number; events: [string, number, number][] };
    assert.equal(udp.status, 'attached');
    assert.match(udp.detail, new RegExp(`at the cgroup v2 root ${elsewhere},`));
    assert.deepEqual(
      events.filter(([event, sport]) => event === 'open' || sport === port),
      [
        ['open', 0, 0],
        ['close', port, 100],
      ],
    );
  } finally {
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('without BTF: one line and exit 1 from the CLI, ENOBTF from the library', async () => {
  const cli = await hidden(`mount -t tmpfs none /sys/kernel/btf\nexec ${q(process.execPath)} ${q(CLI)} flows`);
  assert.equal(cli.code, 1);
  assert.equal(cli.out, '');
  assert.equal(
    cli.err,
    'nettrace: this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); nettrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y\n',
  );
  const js = `try { require(${JSON.stringify(INDEX)}).Tracer.start({}); } catch (e) { process.stdout.write(e.code); }`;
  const lib = await hidden(`mount -t tmpfs none /sys/kernel/btf\nexec ${q(process.execPath)} -e ${q(js)}`);
  assert.equal(lib.out, 'ENOBTF');
});
