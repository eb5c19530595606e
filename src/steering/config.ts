/**
 * The receive-steering configuration, read from the system: per interface and
 * receive queue rps_cpus and rps_flow_cnt, and net.core.rps_sock_flow_entries.
 *
 * sysfs shows the interfaces of the namespace that mounted it, so for another
 * network namespace a child enters it (nsenter), mounts its own sysfs in a
 * private mount namespace (unshare) and lists the queues there.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { InterfaceConfig, QueueConfig, SteeringConfig } from './types';

/** One line per receive queue: NAME IFINDEX QUEUE RPS_CPUS RPS_FLOW_CNT */
const LIST_QUEUES = `for q in /sys/class/net/*/queues/rx-*; do
  [ -r "$q/rps_cpus" ] || continue
  d=\${q%/queues/*}
  echo "\${d##*/} $(cat "$d/ifindex") \${q##*/} $(cat "$q/rps_cpus") $(cat "$q/rps_flow_cnt")"
done`;

/** "00000000,00000005" (32-bit words, most significant first) as CPU numbers. */
export function maskCpus(mask: string): number[] {
  const bits = BigInt('0x' + (mask.replace(/,/g, '') || '0'));
  const cpus: number[] = [];
  for (let cpu = 0; bits >> BigInt(cpu) > 0n; cpu++) if ((bits >> BigInt(cpu)) & 1n) cpus.push(cpu);
  return cpus;
}

export function parseQueues(text: string, netns: number, sockFlowEntries: number): InterfaceConfig[] {
  const byName = new Map<string, InterfaceConfig>();
  for (const line of text.split('\n')) {
    const [name, ifindex, queue, mask, flowCnt] = line.trim().split(/\s+/);
    if (flowCnt === undefined) continue;
    let i = byName.get(name);
    if (!i) byName.set(name, (i = { netns, name, ifindex: Number(ifindex), queues: [] }));
    const q: QueueConfig = {
      queue,
      rps_mask: mask,
      rps_cpus: maskCpus(mask),
      rps_flow_cnt: Number(flowCnt),
      rps: false,
      rfs: false,
    };
    q.rps = q.rps_cpus.length > 0;
    q.rfs = sockFlowEntries > 0 && q.rps_flow_cnt > 0;
    i.queues.push(q);
  }
  return [...byName.values()].sort((a, b) => a.ifindex - b.ifindex);
}

function inode(path: string): number | undefined {
  try {
    return fs.statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** A path that opens this network namespace: a named one (ip netns), else some process's. */
function nsPath(netns: number): string | undefined {
  const named = (() => {
    try {
      return fs.readdirSync('/run/netns').map((n) => `/run/netns/${n}`);
    } catch {
      return [];
    }
  })();
  const procs = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map((p) => `/proc/${p}/ns/net`);
  return [...named, ...procs].find((p) => inode(p) === netns);
}

function run(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
}

/** The configuration of these network namespaces (namespace inode numbers, as flows carry them). */
export function readSteeringConfig(netnses: Iterable<number>): SteeringConfig {
  const own = inode('/proc/self/ns/net');
  let entries = 0;
  try {
    entries = Number(fs.readFileSync('/proc/sys/net/core/rps_sock_flow_entries', 'utf8').trim());
  } catch {
    // kernels without CONFIG_RPS: no steering to configure
  }
  const config: SteeringConfig = { rps_sock_flow_entries: entries, interfaces: [], unreadable: [] };
  for (const netns of new Set(netnses)) {
    try {
      let text: string;
      if (netns === own) text = run('sh', ['-c', LIST_QUEUES]);
      else {
        const path = nsPath(netns);
        if (!path) throw new Error('no process or name holds it open any more');
        text = run('nsenter', [`--net=${path}`, 'unshare', '--mount', 'sh', '-c', `mount -t sysfs nettrace /sys && ${LIST_QUEUES}`]);
      }
      config.interfaces.push(...parseQueues(text, netns, entries));
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
      config.unreadable.push({ netns, reason: why });
    }
  }
  return config;
}
