/** BPF objects in the kernel: which a process holds, which of some ids still exist, where they are pinned. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from './wait';

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

/**
 * Which of these objects the kernel still has, asked by id (`bpftool prog/link/map show id N`): the same
 * kinds as given, each filtered.
 */
export function stillThere<T extends Partial<BpfIds>>(ids: T): T {
  const left = { ...ids };
  for (const [key, kind] of KINDS) if (ids[key]) left[key] = ids[key]!.filter((id) => exists(kind, id)) as T[typeof key];
  return left;
}

/** Ids of loaded programs named like nettrace's. */
export function nettracePrograms(): number[] {
  const list = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' }) || '[]') as { id: number; name?: string }[];
  return list.filter((p) => p.name && /^on_(state|accept)/.test(p.name)).map((p) => p.id);
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
