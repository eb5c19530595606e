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

/** A flow's route, as `ip route get` gives it; shared by every flow to the same destination. */
export interface RouteInfo {
  ifname: string | null;
  gateway: string | null;
  route_src: string | null;
  route_table: string | null;
}

/** Flows to one destination of one namespace that want a route, and the owners that can let the addon in. */
export interface RouteWant {
  netns: number;
  daddr: string;
  pids: Set<number>;
}

/**
 * What asks for routes (the flow table): the destinations of its flows that
 * have no route yet or one read before the kernel's routes last changed
 * (`changes`), and where each answer goes. Keyed by `${netns}|${daddr}`.
 */
export interface RouteTargets {
  unrouted(changes: number): Map<string, RouteWant>;
  setRoute(key: string, route: RouteInfo, changes: number): void;
  /** The namespaces of all its flows: the addon stops watching the others. */
  namespaces(): number[];
}

/** A flow given as an object, whose route is set on it. */
export interface Routable extends RouteInfo {
  netns: number;
  daddr: string;
  pid: number | null;
  state: string;
}

/** Flows given as objects, as RouteTargets: each gets its destination's route (every look-up is asked again). */
export function routeEach(flows: Routable[]): RouteTargets {
  const byKey = new Map<string, Routable[]>();
  for (const f of flows) {
    if (f.state === 'LISTEN' || f.daddr === '0.0.0.0' || f.daddr === '::') continue;
    const key = destinationKey(f.netns, f.daddr);
    byKey.set(key, [...(byKey.get(key) ?? []), f]);
  }
  return {
    unrouted: () =>
      new Map(
        [...byKey].map(([key, fs]) => [key, { netns: fs[0].netns, daddr: fs[0].daddr, pids: new Set(fs.flatMap((f) => (f.pid === null ? [] : [f.pid]))) }]),
      ),
    setRoute: (key, route) => {
      for (const f of byKey.get(key) ?? []) Object.assign(f, route);
    },
    namespaces: () => [...new Set(flows.map((f) => f.netns))],
  };
}

/** The key of a destination, as RouteTargets uses it. */
export function destinationKey(netns: number, daddr: string): string {
  return `${netns}|${daddr}`;
}

export class RouteResolver {
  private readonly kernel: NativeRoutes = new (native().NativeRoutes)();
  readonly netns = fs.statSync('/proc/self/ns/net').ino;
  /** The FIB entry (see routeKey) each destination's last answer came from. */
  private readonly entries = new Map<string, string>();
  /** Why the last look-ups of some flows found no route (per destination), e.g. "Network is unreachable". */
  readonly failures = new Map<string, string>();

  /**
   * Sets the route of every flow that has none yet, or whose route was read before the kernel's
   * routes last changed; a closed flow keeps the route it had. One batch for all of them, one
   * look-up per destination.
   */
  async resolve(targets: RouteTargets): Promise<void> {
    const changes = this.kernel.changes;
    const waiting = targets.unrouted(changes);
    this.kernel.retain(targets.namespaces());
    if (waiting.size === 0) return;
    const watched = new Set(this.kernel.namespaces);
    let named: string[] | undefined;
    const pathsOf = (w: RouteWant): string[] =>
      w.netns === this.netns || watched.has(w.netns) ? [] : [...[...w.pids].map((pid) => `/proc/${pid}/ns/net`), ...(named ??= namedNamespaces())];
    const keys = [...waiting.keys()];
    const queries = keys.map((k) => {
      const w = waiting.get(k)!;
      return { netns: w.netns, daddr: w.daddr, nsPaths: pathsOf(w) };
    });
    const answers = await this.kernel.lookup(queries);
    answers.forEach((a, i) => this.apply(targets, keys[i], queries[i].daddr, a, changes));
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

  /** The FIB entry (routeKey) the route to the flow's destination came from; undefined while unknown. */
  entryOf(f: { netns: number; daddr: string }): string | undefined {
    return this.entries.get(destinationKey(f.netns, f.daddr));
  }

  /** How often the kernel's routes changed, and how many destinations were looked up there (cache misses). */
  stats(): { changes: number; kernelLookups: number; namespaces: number } {
    return { changes: this.kernel.changes, kernelLookups: this.kernel.kernelLookups, namespaces: this.kernel.namespaces.length };
  }

  /** Stops the addon's namespace threads. */
  close(): void {
    this.kernel.close();
  }

  private apply(targets: RouteTargets, key: string, daddr: string, a: RouteAnswer, changes: number): void {
    const r = a.route;
    targets.setRoute(key, { ifname: r?.ifname ?? null, gateway: r?.gateway ?? null, route_src: r?.prefsrc ?? null, route_table: r ? tableName(r.table) : null }, changes);
    if (this.entries.size >= 65536) this.entries.clear(); // bounded: a busy server meets many destinations
    if (a.matched) this.entries.set(key, routeKey(a.matched));
    else this.entries.delete(key);
    if (a.error && this.failures.size < 1024) this.failures.set(daddr, a.error);
    else this.failures.delete(daddr);
  }
}

/** Namespaces `ip netns` named: a way in when no owner of a flow is left (the addon checks each by inode). */
function namedNamespaces(): string[] {
  try {
    return fs.readdirSync('/run/netns').map((n) => `/run/netns/${n}`);
  } catch {
    return [];
  }
}
