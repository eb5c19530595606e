/** Shared by the real-kernel tests: kernel object inspection, children, waiting. */
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import net from 'node:net';

export const ROOT = path.join(__dirname, '..', '..', '..');
export const FIXTURES = path.join(__dirname, '..', 'kernel', 'fixtures');
export const CLI = path.join(ROOT, 'bin', 'nettrace.js');

interface BpftoolObject {
  id: number;
  name?: string;
}

function ids(kind: 'prog' | 'link'): Set<number> {
  const list = JSON.parse(execFileSync('bpftool', ['-j', kind, 'show'], { encoding: 'utf8' }) || '[]') as BpftoolObject[];
  return new Set(list.map((o) => o.id));
}

/** Which of these kernel objects still exist, asked of the kernel by id. */
export function remaining(objects: { programs: number[]; links: number[] }): { programs: number[]; links: number[] } {
  const progs = ids('prog');
  const links = ids('link');
  return { programs: objects.programs.filter((id) => progs.has(id)), links: objects.links.filter((id) => links.has(id)) };
}

/** Ids of loaded programs named like nettrace's. */
export function nettracePrograms(): number[] {
  const list = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' }) || '[]') as BpftoolObject[];
  return list.filter((p) => p.name && /^on_(state|accept)/.test(p.name)).map((p) => p.id);
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface ClientResult {
  pid: number;
  sent: number;
  received: number;
  ports: number[];
}

/**
 * Runs test/fixtures/client.js as a separate process named nt-client: it opens
 * `count` connections one after another, sends `send` bytes, reads `expect`
 * bytes, then closes first.
 */
export async function runClient(host: string, port: number, count: number, send: number, expect: number): Promise<ClientResult> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'client.js'), host, String(port), String(count), String(send), String(expect)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`client exited ${code}`);
  return JSON.parse(out) as ClientResult;
}

/**
 * A listener in this process: reads `expect` bytes from each connection, answers
 * with `reply` bytes, and closes once the client has closed.
 */
export async function listen(host: string, expect: number, reply: number): Promise<net.Server & { port: number }> {
  const server = net.createServer((s) => {
    let got = 0;
    s.on('data', (d) => {
      got += d.length;
      if (got === expect) s.write(Buffer.alloc(reply, 0x61));
    });
    s.on('error', () => {});
  });
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return Object.assign(server, { port });
}

export function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on: bound and closed again. */
export async function closedPort(host: string): Promise<number> {
  const s = net.createServer().listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await close(s);
  return port;
}

/** A child's stdout and stderr so far, collected as they arrive. */
export function captured(child: ChildProcess): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  return { out: () => out, err: () => err };
}

export function spawnCli(args: string[], opts: { uid?: number; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, env: opts.env });
}

/**
 * Starts the CLI with ARGS and resolves once it has attached: it writes its kernel ids to a file then
 * (NETTRACE_KERNEL_IDS). Returns the child, its output as it comes, and its exit code.
 */
export async function startAttached(args: string[], tag: string): Promise<{ child: ChildProcess; io: ReturnType<typeof captured>; exited: Promise<number | null> }> {
  const ids = `/tmp/${tag}-ids-${process.pid}`;
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NETTRACE_KERNEL_IDS: ids } });
  const io = captured(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    await waitFor(() => fs.existsSync(ids) || child.exitCode !== null, 5000, 'the CLI to attach');
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    fs.rmSync(ids, { force: true });
  }
  return { child, io, exited };
}
