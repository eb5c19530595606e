/**
 * The route each flow takes, as `ip route get DADDR` in the flow's network
 * namespace says: asked of the kernel over rtnetlink by the addon, off the
 * JavaScript thread, cached there per (namespace, destination) until the kernel
 * announces a route, link, address or rule change. Takes any flow with a
 * family, a destination and a namespace, whatever its protocol.
 */
import fs from 'node:fs';
import { native, NativeRoute, NativeRoutes, RouteAnswer } from '../native';
import { routeKey, tableName } from './route-names';

/** What a flow needs to be routed, and where its route goes. */
export interface Routable {
  netns: number;
  daddr: string;
  pid: number | null;
  state: string;
  closed: number | null;
  ifname: string | null;
  gateway: string | null;
  route_src: string | null;
  route_table: string | null;
}

const UNSPECIFIED = new Set(['0.0.0.0', '::']);

export class RouteResolver {
  private readonly kernel: NativeRoutes = new (native().NativeRoutes)();
  readonly netns = fs.statSync('/proc/self/ns/net').ino;
  /** The kernel's change count each flow's route was read at. */
  private readonly readAt = new WeakMap<Routable, number>();
  /** The FIB entry each flow's route came from (see routeKey). */
  private readonly entries = new WeakMap<Routable, string>();
  /** Why the last look-ups of some flows found no route (per destination), e.g. "Network is unreachable". */
  readonly failures = new Map<string, string>();

  /**
   * Sets the route of every flow that has none yet, or whose route was read before the kernel's
   * routes last changed; a closed flow keeps the route it had. One batch for all of them.
   */
  async resolve(flows: Routable[]): Promise<void> {
    const changes = this.kernel.changes;
    const owners = new Map<number, Set<string>>();
    for (const f of flows) {
      if (f.pid !== null && f.netns !== this.netns) {
        let s = owners.get(f.netns);
        if (!s) owners.set(f.netns, (s = new Set()));
        s.add(`/proc/${f.pid}/ns/net`);
      }
    }
    const waiting = new Map<string, Routable[]>();
    for (const f of flows) {
      if (f.state === 'LISTEN' || UNSPECIFIED.has(f.daddr)) continue;
      const read = this.readAt.get(f);
      if (read === changes || (read !== undefined && f.closed !== null)) continue;
      const key = `${f.netns}|${f.daddr}`;
      const list = waiting.get(key);
      if (list) list.push(f);
      else waiting.set(key, [f]);
    }
    this.kernel.retain([...new Set(flows.map((f) => f.netns))]);
    if (waiting.size === 0) return;
    const watched = new Set(this.kernel.namespaces);
    let named: string[] | undefined;
    const pathsOf = (netns: number): string[] =>
      netns === this.netns || watched.has(netns) ? [] : [...(owners.get(netns) ?? []), ...(named ??= namedNamespaces())];
    const queries = [...waiting.values()].map(([f]) => ({ netns: f.netns, daddr: f.daddr, nsPaths: pathsOf(f.netns) }));
    const answers = await this.kernel.lookup(queries);
    answers.forEach((a, i) => {
      for (const f of waiting.get(`${queries[i].netns}|${queries[i].daddr}`)!) this.apply(f, a, changes);
    });
  }

  /** `ip route get ADDR` in nettrace's own namespace. */
  async get(addr: string): Promise<RouteAnswer> {
    const [a] = await this.kernel.lookup([{ netns: this.netns, daddr: addr, nsPaths: [] }]);
    return a;
  }

  /** Every route of every table of nettrace's own namespace. */
  dump(): Promise<NativeRoute[]> {
    return this.kernel.dump(this.netns, []);
  }

  /** The FIB entry (routeKey) the flow's route came from; undefined while unknown. */
  entryOf(f: Routable): string | undefined {
    return this.entries.get(f);
  }

  /** How often the kernel's routes changed, and how many destinations were looked up there (cache misses). */
  stats(): { changes: number; kernelLookups: number; namespaces: number } {
    return { changes: this.kernel.changes, kernelLookups: this.kernel.kernelLookups, namespaces: this.kernel.namespaces.length };
  }

  /** Stops the addon's namespace threads. */
  close(): void {
    this.kernel.close();
  }

  private apply(f: Routable, a: RouteAnswer, changes: number): void {
    this.readAt.set(f, changes);
    const r = a.route;
    f.ifname = r?.ifname ?? null;
    f.gateway = r?.gateway ?? null;
    f.route_src = r?.prefsrc ?? null;
    f.route_table = r ? tableName(r.table) : null;
    if (a.matched) this.entries.set(f, routeKey(a.matched));
    else this.entries.delete(f);
    if (a.error && this.failures.size < 1024) this.failures.set(f.daddr, a.error);
    else this.failures.delete(f.daddr);
  }
}

/** Namespaces `ip netns` named: a way in when no owner of a flow is left (the addon checks each by inode). */
export function namedNamespaces(): string[] {
  try {
    return fs.readdirSync('/run/netns').map((n) => `/run/netns/${n}`);
  } catch {
    return [];
  }
}
