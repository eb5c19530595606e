/**
 * Boots one of Debian's kernels (5.10, 6.1 or 6.12, see ./kernel.sh) under qemu with a small initramfs (busybox, the
 * 9p modules, ./init.sh) that mounts this machine's root read-only and runs a
 * shell script from it, so the real node, addon and committed BPF object run
 * against the guest's kernel. Results come back through a writable 9p share.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const HERE = path.join(__dirname, '..', '..', '..', '..', 'test', 'kernel', 'qemu');

export interface GuestResult {
  /** The script's exit status in the guest, or null if it never finished. */
  status: number | null;
  /** The script's stdout and stderr. */
  log: string;
  /** The serial console: kernel and init messages. */
  console: string;
  /** 'kvm' or 'tcg'. */
  accel: string;
  /** The share the script wrote to, read before it is removed. */
  files: Map<string, string>;
}

/** A Debian kernel series ./kernel.sh knows. */
export type KernelSeries = '5.10' | '6.1' | '6.12';

export interface GuestOptions {
  kernel: KernelSeries;
  /** Shell script run in the guest, chrooted into this machine's root; it writes results to /run/out. */
  script: string;
  /** Whole run, boot to power-off; qemu is killed past it. */
  budgetMs: number;
  /** Files of /run/out to read back. */
  read: string[];
}

/** vmlinuz and the module directory, from the cache kernel.sh fills. */
function guestKernel(series: KernelSeries): { vmlinuz: string; modules: string } {
  const out = execFileSync('bash', [path.join(HERE, 'kernel.sh'), series], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [vmlinuz, modules] = out.trim().split(' ');
  return { vmlinuz, modules };
}

function buildInitramfs(dir: string, modules: string): string {
  const root = path.join(dir, 'initramfs');
  for (const d of ['bin', 'modules', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  fs.copyFileSync(path.join(HERE, 'init.sh'), path.join(root, 'init'));
  fs.chmodSync(path.join(root, 'init'), 0o755);
  for (const f of fs.readdirSync(modules)) fs.copyFileSync(path.join(modules, f), path.join(root, 'modules', f));
  const image = path.join(dir, 'initramfs.cpio');
  execFileSync('sh', ['-c', `cd "${root}" && find . | busybox cpio -o -H newc > "${image}" 2>/dev/null`]);
  return image;
}

/** KVM when /dev/kvm can be opened; software emulation otherwise. */
function kvmUsable(): boolean {
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
    return true;
  } catch {
    return false;
  }
}

// Nested KVM can be present and still never get a kernel past its first
// instructions (this project's CI machine, a firecracker guest, is one): a
// kernel prints its banner within seconds of boot or not at all.
const BANNER_MS = 10000;

interface Boot {
  status: 'done' | 'hung' | 'overrun';
  console: string;
}

function boot(accel: 'kvm' | 'tcg', kernel: { vmlinuz: string }, initrd: string, share: string, deadline: number): Promise<Boot> {
  // without -arch-capabilities, qemu 7.2 aborts on nested KVM that refuses MSR 0x10a
  const cpu = accel === 'kvm' ? ['-enable-kvm', '-cpu', 'host,-arch-capabilities'] : ['-accel', 'tcg'];
  const args = [
    ...cpu,
    ...['-m', '1536', '-smp', '2', '-nographic', '-no-reboot', '-net', 'none'],
    ...['-kernel', kernel.vmlinuz, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1'],
    ...['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'],
    ...['-virtfs', `local,path=${share},mount_tag=out,security_model=none,multidevs=remap`],
  ];
  // killed with the test process too, should that die before it can kill qemu
  const qemu = spawn('setpriv', ['--pdeathsig', 'KILL', 'qemu-system-x86_64', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let console = '';
  qemu.stdout.on('data', (d) => (console += d));
  qemu.stderr.on('data', (d) => (console += d));
  return new Promise((resolve, reject) => {
    let verdict: Boot['status'] = 'done';
    const kill = (why: Boot['status']) => {
      verdict = why;
      qemu.kill('SIGKILL');
    };
    const overrun = setTimeout(() => kill('overrun'), Math.max(0, deadline - Date.now()));
    const banner = setTimeout(() => {
      if (accel === 'kvm' && !console.includes('Linux version')) kill('hung');
    }, BANNER_MS);
    qemu.on('error', (e) => {
      clearTimeout(overrun);
      clearTimeout(banner);
      reject(e);
    });
    qemu.on('exit', () => {
      clearTimeout(overrun);
      clearTimeout(banner);
      resolve({ status: verdict, console });
    });
  });
}

/** The test-only tools, which .ci/run installs and scripts/setup.sh does not. */
function checkTools(): void {
  const missing = ['/bin/busybox', '/usr/bin/qemu-system-x86_64'].filter((f) => !fs.existsSync(f));
  if (missing.length > 0) {
    throw new Error(`${missing.join(' and ')} missing: apt-get install qemu-system-x86 busybox-static (.ci/run does)`);
  }
}

export async function runInGuest(opts: GuestOptions): Promise<GuestResult> {
  checkTools();
  const deadline = Date.now() + opts.budgetMs;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-qemu-'));
  try {
    const kernel = guestKernel(opts.kernel);
    const initrd = buildInitramfs(dir, kernel.modules);
    const share = path.join(dir, 'out');
    let accel: 'kvm' | 'tcg' = kvmUsable() ? 'kvm' : 'tcg';
    let consoleLog = '';
    for (;;) {
      fs.rmSync(share, { recursive: true, force: true });
      fs.mkdirSync(share);
      fs.writeFileSync(path.join(share, 'run.sh'), opts.script);
      const b = await boot(accel, kernel, initrd, share, deadline);
      consoleLog += b.console;
      if (b.status === 'hung' && accel === 'kvm') {
        consoleLog += '\n[kvm never reached init: retrying with software emulation]\n';
        accel = 'tcg';
        continue;
      }
      if (b.status === 'overrun') consoleLog += `\n[killed: over the ${opts.budgetMs} ms budget]\n`;
      break;
    }
    const readShare = (name: string) => {
      try {
        return fs.readFileSync(path.join(share, name), 'utf8');
      } catch {
        return '';
      }
    };
    const statusText = readShare('status').trim();
    const files = new Map(opts.read.map((f) => [f, readShare(f)]));
    return { status: statusText === '' ? null : Number(statusText), log: readShare('guest.log'), console: consoleLog, accel, files };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
