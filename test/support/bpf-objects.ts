/** What the kernel holds for a process, and whether it still exists: BPF objects by id, pins, a churning peer. */
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES, waitFor } from './helpers';

export interface BpfIds {
  programs: number[];
  links: number[];
  maps: number[];
}

const sorted = (ids: Iterable<number>): number[] => [...new Set(ids)].sort((a, b) => a - b);

/** Every BPF program, link and map a live process holds a descriptor of, from its fdinfo. */
export function heldBpf(pid: number): BpfIds {
  const held: BpfIds = { programs: [], links: [], maps: [] };
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    let info: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const field = (name: string) => Number(info.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1]);
    if (target === 'anon_inode:bpf-prog') held.programs.push(field('prog_id'));
    else if (target === 'anon_inode:bpf-map') held.maps.push(field('map_id'));
    else if (target === 'anon_inode:bpf_link') held.links.push(field('link_id'));
  }
  return { programs: sorted(held.programs), links: sorted(held.links), maps: sorted(held.maps) };
}

export function normalized(ids: BpfIds): BpfIds {
  return { programs: sorted(ids.programs), links: sorted(ids.links), maps: sorted(ids.maps) };
}

const KINDS = [
  ['programs', 'prog'],
  ['links', 'link'],
  ['maps', 'map'],
] as const;

function exists(kind: 'prog' | 'link' | 'map', id: number): boolean {
  try {
    execFileSync('bpftool', [kind, 'show', 'id', String(id)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Which of these objects the kernel still has, asked by id (`bpftool prog/link/map show id N`). */
export function stillThere(ids: BpfIds): BpfIds {
  const left: BpfIds = { programs: [], links: [], maps: [] };
  for (const [key, kind] of KINDS) left[key] = ids[key].filter((id) => exists(kind, id));
  return left;
}

const NONE: BpfIds = { programs: [], links: [], maps: [] };

/** Waits (the kernel frees some objects from a work queue) until none of `ids` exists; returns what is left. */
export async function gone(ids: BpfIds, timeoutMs = 10000): Promise<BpfIds> {
  let left = stillThere(ids);
  await waitFor(() => JSON.stringify((left = stillThere(ids))) === JSON.stringify(NONE), timeoutMs, 'the BPF objects to go').catch(() => {});
  return left;
}

/** Paths under /sys/fs/bpf that pin one of these objects (bpftool -f lists each object's pins). */
export function pinsOf(ids: BpfIds): string[] {
  const pins: string[] = [];
  for (const [key, kind] of KINDS) {
    const list = JSON.parse(execFileSync('bpftool', ['-f', '-j', kind, 'show'], { encoding: 'utf8' }) || '[]') as { id: number; pinned?: string[] }[];
    for (const o of list) if (ids[key].includes(o.id)) pins.push(...(o.pinned ?? []));
  }
  return pins;
}

/** Every file under /sys/fs/bpf. */
export function bpffsEntries(dir = '/sys/fs/bpf'): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? [p, ...bpffsEntries(p)] : [p];
  });
}

/** Reads a FIFO a writer is blocked on (or will open soon) without ever blocking this thread. */
export async function readFifo(fifo: string, timeoutMs = 10000): Promise<string> {
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  const end = Date.now() + timeoutMs;
  try {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        if (Date.now() > end) throw new Error(`nothing came through ${fifo}`);
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (n === 0 && chunks.length > 0) return Buffer.concat(chunks).toString();
      if (n === 0) {
        if (Date.now() > end) return '';
        await new Promise((r) => setTimeout(r, 10)); // the writer has not opened yet
        continue;
      }
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the process's main thread sleeps in open() of a FIFO, waiting for a reader. */
export function heldAtFifo(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8') === 'wait_for_partner';
  } catch {
    return false;
  }
}

export interface Churner {
  child: ChildProcess;
  pid: number;
  /** Stops starting connections, lets the open ones finish; resolves with how many completed. */
  stop(): Promise<{ conns: number; errors: number }>;
}

/** test/fixtures/churner.js: `rate` connections a second to host:port until stopped. */
export async function churn(host: string, port: number, rate: number, bytes = 10): Promise<Churner> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'churner.js'), host, String(port), String(rate), String(bytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('\n'), 10000, 'the churner to start');
  const { pid } = JSON.parse(out.split('\n')[0]) as { pid: number };
  return {
    child,
    pid,
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      return JSON.parse(out.trim().split('\n').pop()!) as { conns: number; errors: number };
    },
  };
}
