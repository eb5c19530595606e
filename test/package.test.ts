/**
 * What installs with no toolchain (npm run package → release/), checked as a user gets it: the portable addon's
 * dynamic needs and glibc floor, the .deb's contents, and each of the .deb and the npm tarball installed into a
 * fresh minimal Debian root (test/fresh-root.sh) tracing exactly the connection a process inside it makes.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
const RELEASE = path.join(ROOT, 'release');
const TGZ = path.join(RELEASE, `nettrace-${VERSION}.tgz`);
const EXE = path.join(RELEASE, 'nettrace');
const DEB = path.join(RELEASE, `nettrace_${VERSION}_amd64.deb`);
// What any glibc system has: the C library's own parts, libgcc's unwinder and the dynamic loader.
const ALLOWED_NEEDED = ['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1', 'libgcc_s.so.1', 'ld-linux-x86-64.so.2'];

let hostVersion = '';

before(
  () => {
    // incremental after the first run: cargo, tsc and the root's tarball are cached
    execFileSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    hostVersion = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'nettrace.js'), '--version'], { encoding: 'utf8' });
  },
  { timeout: 30 * 60_000 },
);

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ntpkg-test-'));
}

// the tracer's addon and bench's load generator alike
for (const addon of ['native/nettrace.linux-x64-gnu.node', 'native/churn/nettrace-churn.linux-x64-gnu.node']) {
  test(`the shipped ${addon} links only libc and friends, needs at most GLIBC_2.17, and is stripped`, async () => {
    const dir = tmpdir();
    try {
      await run('tar', ['-xzf', TGZ, '-C', dir, `package/${addon}`]);
      const file = path.join(dir, 'package', addon);
      const dynamic = (await run('readelf', ['-d', '-W', file])).stdout;
      const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      assert.ok(needed.includes('libc.so.6'), dynamic);
      // libbpf, libelf and zlib are linked in: no libelf.so.1 or libz.so.1 here
      assert.deepEqual(needed.filter((n) => !ALLOWED_NEEDED.includes(n)), [], `unexpected NEEDED: ${needed.join(' ')}`);
      const symbols = (await run('readelf', ['--dyn-syms', '-W', file], { maxBuffer: 64 << 20 })).stdout;
      const versions = [...symbols.matchAll(/@GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
      assert.ok(versions.length > 0, 'no GLIBC symbol versions found');
      const [major, minor] = versions.reduce((a, b) => (a[0] * 1000 + a[1] >= b[0] * 1000 + b[1] ? a : b));
      assert.ok(major * 1000 + minor <= 2017, `needs GLIBC_${major}.${minor}`);
      const sections = (await run('readelf', ['-S', '-W', file])).stdout;
      assert.doesNotMatch(sections, /\.symtab|\.debug_info/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('the .deb holds the executable, the unit and the man page, and depends on the C runtime only', async () => {
  const contents = (await run('dpkg-deb', ['-c', DEB])).stdout;
  for (const f of ['./usr/bin/nettrace', './lib/systemd/system/nettrace.service', './usr/share/man/man1/nettrace.1.gz', './usr/share/doc/nettrace/copyright']) {
    assert.match(contents, new RegExp(` ${f.replace(/\./g, '\\.')}\\n`), f);
  }
  const depends = (await run('dpkg-deb', ['-f', DEB, 'Depends'])).stdout.trim();
  const names = depends.split(',').map((d) => d.trim().split(/[ (]/)[0]);
  // libc6, plus libgcc-s1 and libstdc++6 for Node's own C++ runtime: both on every Debian (libc6 and apt need them)
  assert.ok(names.includes('libc6'), depends);
  assert.deepEqual(names.filter((n) => !['libc6', 'libgcc-s1', 'libstdc++6'].includes(n)), [], depends);
  assert.equal((await run('dpkg-deb', ['-f', DEB, 'Version'])).stdout.trim(), VERSION);
  const unit = (await run('dpkg-deb', ['--fsys-tarfile', DEB], { encoding: 'buffer', maxBuffer: 512 << 20 })).stdout;
  assert.ok(unit.includes(Buffer.from('ExecStart=/usr/bin/nettrace serve $NETTRACE_ARGS')));
  const man = (await run('bash', ['-c', `dpkg-deb --fsys-tarfile '${DEB}' | tar -xO ./usr/share/man/man1/nettrace.1.gz | gzip -d`], { maxBuffer: 512 << 20 })).stdout;
  assert.match(man, /^\.TH NETTRACE "1"/m);
  assert.match(man, /^\\fB\\-\\-json\\fR/m); // the options, from --help
});

test('the single executable names the same version, commit and BPF object as the build', async () => {
  const r = await run(EXE, ['--version'], { env: { PATH: '/usr/bin:/bin' } });
  assert.equal(r.stdout, hostVersion);
  assert.match(hostVersion, /^nettrace \d+\.\d+\.\d+ \(commit [0-9a-f]{12}(-dirty)?, bpf sha256 [0-9a-f]{16}\)\n$/);
});

/** A server on loopback that answers one line and closes 100 ms after the client does. */
async function server(): Promise<{ port: number; close: () => Promise<void> }> {
  const s = net.createServer((c) => {
    c.on('data', () => c.write('pong\n'));
    c.on('end', () => setTimeout(() => c.end(), 100));
    c.on('error', () => {});
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { port: (s.address() as net.AddressInfo).port, close: () => new Promise((resolve) => s.close(() => resolve())) };
}

async function freshRoot(mode: 'deb' | 'npm' | 'exe', artefact: string, suite = 'bookworm'): Promise<void> {
  const srv = await server();
  const out = tmpdir();
  try {
    await run('bash', [path.join(ROOT, 'test', 'fresh-root.sh'), mode, artefact, String(srv.port), out], {
      timeout: 15 * 60_000,
      env: { ...process.env, SUITE: suite },
    });
    const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8');
    assert.equal(read('version.txt'), hostVersion);
    const tools = read('tools.txt').split('\n').filter(Boolean);
    assert.deepEqual(tools, mode === 'npm' ? ['/usr/local/bin/node'] : [], 'no compiler, no libelf or libbpf, and Node only where copied in');

    const client = Number(read('client.pid'));
    const records = read('events.json').trim().split('\n').map((l) => JSON.parse(l));
    // exactly the client's socket: its states, the connect and the close, and nothing else
    assert.deepEqual(
      records.map((e) => (e.type === 'state' ? `${e.old}>${e.new}` : e.type)),
      ['CLOSE>SYN_SENT', 'SYN_SENT>ESTABLISHED', 'connect', 'ESTABLISHED>FIN_WAIT1', 'FIN_WAIT1>FIN_WAIT2', 'FIN_WAIT2>CLOSE', 'close'],
    );
    for (const e of records) {
      assert.equal(e.pid, client);
      assert.equal(e.comm, 'bash');
      assert.equal(e.daddr, '127.0.0.1');
      assert.equal(e.dport, srv.port);
    }
    const connect = records.find((e) => e.type === 'connect');
    assert.equal(connect.result, 'ok');
    const close = records.find((e) => e.type === 'close');
    assert.equal(close.tx_bytes, 'hello\n'.length);
    assert.equal(close.rx_bytes, 'pong\n'.length);
    // with --json, the summary is one JSON line on stderr, and nothing else is there
    const summary = JSON.parse(read('tracer.err'));
    assert.equal(summary.type, 'summary');
    assert.equal(summary.events, 7);
    assert.equal(summary.drops, 0);

    const flows = read('flows.json').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(flows.length, 1, read('flows.json'));
    assert.equal(flows[0].state, 'ESTABLISHED');
    assert.equal(flows[0].pid, client);
    assert.equal(flows[0].comm, 'bash');
    assert.equal(flows[0].sport, close.sport);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
    await srv.close();
  }
}

test('the .deb installs with dpkg -i on a fresh Debian root and traces a process there', { timeout: 15 * 60_000 }, () => freshRoot('deb', DEB));

test('the npm tarball installs with npm install -g (no build, no registry) next to a copied node binary', { timeout: 15 * 60_000 }, () =>
  freshRoot('npm', TGZ),
);

test('the single executable, copied alone into a Debian 11 root (glibc 2.31), traces a process there', { timeout: 15 * 60_000 }, () =>
  freshRoot('exe', EXE, 'bullseye'),
);
