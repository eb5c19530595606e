/**
 * Which network namespace a `netns` option names: a name under /run/netns (as
 * `ip netns` makes them), a path to a namespace file (/proc/PID/ns/net), or an
 * inode number (as records and `lsns` show it). The kernel then keeps only that
 * namespace's sockets; the path lets the addon enter it for socket snapshots.
 */
import fs from 'node:fs';
import path from 'node:path';
import { escapeControls, NettraceError } from './errors';

export interface ResolvedNetns {
  /** What the user gave, for messages and the agent's identity. */
  spec: string;
  inode: number;
  /** A file of that namespace the addon opens. */
  path: string;
}

const RUN_NETNS = '/run/netns';

function inodeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** The device of namespace files (nsfs): a path elsewhere is no namespace. */
function isNamespaceFile(file: string): boolean {
  try {
    return fs.statSync(file).dev === fs.statSync('/proc/self/ns/net').dev;
  } catch {
    return false;
  }
}

/** A file of namespace `inode`: a /run/netns entry, else some process's /proc/PID/ns/net. */
function findInode(inode: number): string | undefined {
  const candidates = [
    ...(fs.existsSync(RUN_NETNS) ? fs.readdirSync(RUN_NETNS).map((n) => path.join(RUN_NETNS, n)) : []),
    ...fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => `/proc/${p}/ns/net`),
  ];
  return candidates.find((c) => inodeOf(c) === inode);
}

/** Resolves `spec`; throws NettraceError EINVAL with one line when it names no network namespace. */
export function resolveNetns(spec: string | number): ResolvedNetns {
  const text = String(spec);
  const say = (why: string): NettraceError => new NettraceError('EINVAL', `network namespace '${escapeControls(text)}': ${why}`);
  if (/^\d+$/.test(text)) {
    const inode = Number(text);
    const file = inode > 0 && inode <= 0xffffffff ? findInode(inode) : undefined;
    if (!file) throw say('no /run/netns entry or process is in a namespace with that inode');
    return { spec: text, inode, path: file };
  }
  if (text === '' || text === '.' || text === '..') throw say('not a name');
  const file = text.includes('/') ? text : path.join(RUN_NETNS, text);
  if (!fs.existsSync(file)) throw say(text.includes('/') ? 'no such file' : `unknown name (no ${file}; ip netns list shows the names)`);
  if (!isNamespaceFile(file)) throw say(`${file} is not a namespace file`);
  return { spec: text, inode: inodeOf(file)!, path: file };
}

/**
 * Calls `onGone` once when the file that named the namespace is removed or names
 * another namespace (ip netns del, the process of /proc/PID/ns/net exited). The
 * tracer still holds the namespace open, but nothing new can enter it by name:
 * an agent scoped to it is then watching a namespace on its way out.
 */
export function watchNetns(ns: ResolvedNetns, intervalMs: number, onGone: (message: string) => void): () => void {
  const timer = setInterval(() => {
    if (inodeOf(ns.path) === ns.inode) return;
    clearInterval(timer);
    onGone(`network namespace '${escapeControls(ns.spec)}' is gone (${ns.path} no longer names it): nothing more will be seen there`);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
