/**
 * Two network namespaces joined by a veth pair, for churn that crosses a real
 * link instead of loopback. Names carry this process's pid, so concurrent runs
 * never collide, and remove() deletes both (the veth pair goes with them).
 */
import { execFileSync } from 'node:child_process';

export interface VethPair {
  serverNs: string;
  clientNs: string;
  /** Namespace files the generator's threads setns() into. */
  serverNsPath: string;
  clientNsPath: string;
  serverAddr: string;
  remove(): void;
}

const ADDRS = { 4: ['10.213.0.1', '10.213.0.2', 24], 6: ['fd00:6e74::1', 'fd00:6e74::2', 64] } as const;

function ip(...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`ip ${args.join(' ')}: ${err.stderr?.toString().trim() || err.message}`);
  }
}

export function namespaceNames(pid = process.pid): [string, string] {
  return [`ntb${pid}s`, `ntb${pid}c`];
}

export function createVethPair(family: 4 | 6): VethPair {
  const [serverNs, clientNs] = namespaceNames();
  const remove = (): void => {
    for (const ns of [serverNs, clientNs]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // not created, or already gone
      }
    }
  };
  try {
    ip('netns', 'add', serverNs);
    ip('netns', 'add', clientNs);
    ip('link', 'add', serverNs, 'type', 'veth', 'peer', 'name', clientNs);
    const [sAddr, cAddr, bits] = ADDRS[family];
    for (const [ns, addr] of [[serverNs, sAddr], [clientNs, cAddr]] as const) {
      ip('link', 'set', ns, 'netns', ns);
      // nodad: an IPv6 address is usable at once instead of after duplicate detection
      ip('-n', ns, 'addr', 'add', `${addr}/${bits}`, 'dev', ns, ...(family === 6 ? ['nodad'] : []));
      ip('-n', ns, 'link', 'set', ns, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    return {
      serverNs,
      clientNs,
      serverNsPath: `/run/netns/${serverNs}`,
      clientNsPath: `/run/netns/${clientNs}`,
      serverAddr: sAddr,
      remove,
    };
  } catch (e) {
    remove();
    throw e;
  }
}
