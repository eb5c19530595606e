/**
 * Owners of sockets nettrace did not see open, found as `ss -p` does: the
 * socket inode in some process's /proc/PID/fd. Inodes are cached, and /proc is
 * walked again only when an inode is not yet known.
 */
import fs from 'node:fs';
import { cgroup2Root } from './cgroups';

export interface ProcOwner {
  pid: number;
  comm: string;
  /** The cgroup v2 id (its directory's inode) the process is in; null if unreadable. */
  cgroup: number | null;
}

export class ProcOwners {
  private byInode = new Map<number, ProcOwner>();
  private readonly root = cgroup2Root();

  /** Owners of these inodes; one /proc walk for all the unknown ones. */
  lookup(inodes: Iterable<number>): Map<number, ProcOwner> {
    const wanted = [...inodes].filter((i) => i !== 0);
    if (wanted.some((i) => !this.byInode.has(i))) this.byInode = walkProc(this.root);
    const found = new Map<number, ProcOwner>();
    for (const i of wanted) {
      const o = this.byInode.get(i);
      if (o) found.set(i, o);
    }
    return found;
  }
}

function walkProc(root: string | undefined): Map<number, ProcOwner> {
  const owners = new Map<number, ProcOwner>();
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let owner: ProcOwner | undefined;
    for (const fd of safeReaddir(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (!m || owners.has(Number(m[1]))) continue;
      owner ??= { pid, comm: readComm(pid), cgroup: root === undefined ? null : readCgroup(pid, root) };
      owners.set(Number(m[1]), owner);
    }
  }
  return owners;
}

function readComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'latin1').replace(/\n$/, '');
  } catch {
    return '';
  }
}

/** The id of the process's cgroup v2: its `0::PATH` line, as the directory's inode under the v2 mount. */
function readCgroup(pid: number, root: string): number | null {
  try {
    const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
    return line === undefined ? null : fs.statSync(root + line.slice(3)).ino;
  } catch {
    return null; // exited, or its cgroup went meanwhile
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return []; // the process exited, or is not ours to read
  }
}
