/**
 * Owners of sockets nettrace did not see open, found as `ss -p` does: the
 * socket inode in some process's /proc/PID/fd. Inodes are cached, and /proc is
 * walked again only when an inode is not yet known.
 */
import fs from 'node:fs';

export interface ProcOwner {
  pid: number;
  comm: string;
}

export class ProcOwners {
  private byInode = new Map<number, ProcOwner>();

  /** Owners of these inodes; one /proc walk for all the unknown ones. */
  lookup(inodes: Iterable<number>): Map<number, ProcOwner> {
    const wanted = [...inodes].filter((i) => i !== 0);
    if (wanted.some((i) => !this.byInode.has(i))) this.byInode = walkProc();
    const found = new Map<number, ProcOwner>();
    for (const i of wanted) {
      const o = this.byInode.get(i);
      if (o) found.set(i, o);
    }
    return found;
  }
}

function walkProc(): Map<number, ProcOwner> {
  const owners = new Map<number, ProcOwner>();
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let comm: string | undefined;
    for (const fd of safeReaddir(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (!m || owners.has(Number(m[1]))) continue;
      comm ??= readComm(pid);
      owners.set(Number(m[1]), { pid, comm });
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

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return []; // the process exited, or is not ours to read
  }
}
