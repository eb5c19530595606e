/**
 * Each flow's cgroup id resolved to its path and owner (see cgroup-names).
 * A cgroup v2 id is the inode number of the cgroup's directory under the v2
 * mount, so one walk of that tree maps every id to its path. The walk is
 * cached and made again only when a flow names an id it does not hold, at
 * most once per `rewalkMs`; ids still unknown after a fresh walk (the cgroup
 * was removed before it was seen) are counted in `unresolved`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { classifyCgroup, Container, inUnit, isContainer } from './cgroup-names';

/** Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems); undefined if nowhere. */
export function cgroup2Root(mounts = '/proc/self/mounts'): string | undefined {
  for (const line of fs.readFileSync(mounts, 'utf8').split('\n')) {
    const [, dir, type] = line.split(' ');
    if (type === 'cgroup2') return dir.replace(/\\040/g, ' ');
  }
  return undefined;
}

export class CgroupResolver {
  readonly root: string | undefined;
  private byId = new Map<number, Container>();
  private walkedAt = -Infinity;
  /** Ids a fresh walk did not find: flows whose owner's cgroup is gone. */
  readonly unresolved = new Set<number>();
  /** Walks of the cgroup tree so far. */
  walks = 0;

  constructor(
    root = cgroup2Root(),
    private readonly rewalkMs = 1000,
  ) {
    this.root = root;
  }

  /** The container of the cgroup `id`; undefined if no cgroup has that id (or there is no cgroup v2). */
  lookup(id: number, now = Date.now()): Container | undefined {
    const known = this.byId.get(id);
    if (known || this.root === undefined) return known;
    if (now - this.walkedAt >= this.rewalkMs) this.walk(now);
    const c = this.byId.get(id);
    if (c) this.unresolved.delete(id);
    else if (this.unresolved.size < 4096) this.unresolved.add(id);
    return c;
  }

  /** The ids of every cgroup whose owner `pick` accepts, with all the cgroups below them. */
  select(pick: (c: Container) => boolean): number[] {
    this.walk(Date.now());
    const chosen = [...this.byId.entries()].filter(([, c]) => pick(c)).map(([, c]) => c.path);
    return [...this.byId.entries()].filter(([, c]) => chosen.some((p) => c.path === p || c.path.startsWith(p === '/' ? '/' : p + '/'))).map(([id]) => id);
  }

  /** The cgroups of the container `id` (full or prefix) and below. */
  containerIds(id: string): number[] {
    return this.select((c) => isContainer(c, id));
  }

  /** The cgroups of the systemd unit `unit` and below. */
  unitIds(unit: string): number[] {
    return this.select((c) => inUnit(c, unit));
  }

  private walk(now: number): void {
    this.walkedAt = now;
    this.walks++;
    const byId = new Map<number, Container>();
    const root = this.root;
    if (root === undefined) return;
    const visit = (dir: string, rel: string): void => {
      let st: fs.Stats;
      try {
        st = fs.statSync(dir);
      } catch {
        return; // removed meanwhile
      }
      const before = this.byId.get(st.ino);
      byId.set(st.ino, before?.path === rel ? before : classifyCgroup(rel));
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) visit(path.join(dir, e.name), `${rel === '/' ? '' : rel}/${e.name}`);
    };
    visit(root, '/');
    this.byId = byId;
  }
}
