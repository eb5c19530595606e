/** Keeps a FlowTable current from a FlowSource (a running Tracer): its event stream plus a kernel snapshot per refresh. */
import fs from 'node:fs';
import { Clock } from '../events';
import { ProcOwners } from './owners';
import { CgroupResolver } from './cgroups';
import { NatResolver } from './nat';
import { RouteResolver } from './routes';
import { decodePeers, decodeSnapshot, decodeUdpSnapshot, SocketRow } from './snapshot';
import { FlowTable, FlowTableOptions } from './flow-table';
import { Flow } from './flow';
import { DnsLookups } from '../dns/lookups';
import { DnsNames } from '../dns/names';
import { Kind } from '../layout';
import { FlowEnricher, FlowSource } from './flow-source';

export class FlowMonitor {
  readonly table: FlowTable;
  /** Run at each refresh: what the source gives (see FlowSource.flowEnrichers). */
  readonly enrichers: readonly FlowEnricher[];
  private readonly owners = new ProcOwners();
  /** Sockets the last refresh found with no owner, and whether there was a refresh before. */
  private ownerless = new Set<number>();
  private refreshed = false;
  /** This process's network namespace: the one snapshots list. */
  readonly netns = fs.statSync('/proc/self/ns/net').ino;
  private readonly unsubscribe: () => void;
  private readonly routing = new Serial();
  /** Names of answered addresses, from the lookups seen; set when the source has DNS records (dnsEnabled). */
  readonly names: DnsNames | undefined;
  /** Why the last route look-up failed as a whole; undefined when it did not. */
  routeError: string | undefined;
  private readonly natting = new Serial();
  /** Why the last NAT look-up failed as a whole; undefined when it did not. */
  natError: string | undefined;

  /**
   * With `routes`, every refresh also sets each flow's route (see routesSettled); with `containers`, its
   * container; with `nat`, its translation (see natSettled).
   */
  constructor(
    readonly source: FlowSource,
    options: FlowTableOptions = {},
    readonly routes?: RouteResolver,
    readonly extras: { containers?: CgroupResolver; nat?: NatResolver } = {},
  ) {
    this.table = new FlowTable(options);
    this.table.containers = extras.containers;
    this.enrichers = source.flowEnrichers();
    const clock = new Clock();
    if (!source.dnsEnabled) {
      this.unsubscribe = source.onBatch((c) => {
        while (c.next()) this.table.applyRecord(c, clock);
      });
      return;
    }
    const names = (this.names = new DnsNames());
    const lookups = new DnsLookups((e) => e.timeout || names.learn(e));
    this.unsubscribe = source.onBatch((c) => {
      while (c.next()) {
        if (c.kind === Kind.Dns) lookups.add(c, clock);
        else this.table.applyRecord(c, clock);
      }
    });
  }

  /** Folds in a snapshot of every socket now and ends the interval (rates, expiry); returns the snapshot. */
  refresh(now = Date.now()): SocketRow[] {
    const rows = decodeSnapshot(this.source.snapshot());
    this.table.applySnapshot(rows, now, this.netns);
    const udp = decodeUdpSnapshot(this.source.snapshotUdp());
    this.table.applyUdpSnapshot(udp, decodePeers(this.source.udpPeers()), now, this.netns);
    // Sockets that predate tracing are looked up in /proc at once; a socket born since is looked up only once it
    // has stayed ownerless for a whole interval: its connect or accept names its owner first, and at churn a
    // /proc walk per refresh for the connections in flight held the event loop for tens of milliseconds.
    const ownerless = [...rows, ...udp].filter((r) => r.ino !== 0 && !this.table.owned(r.sock));
    const unowned = this.refreshed ? ownerless.filter((r) => this.ownerless.has(r.sock)) : ownerless;
    this.ownerless = new Set(ownerless.map((r) => r.sock));
    this.refreshed = true;
    if (unowned.length > 0) {
      const found = this.owners.lookup(unowned.map((r) => r.ino));
      for (const r of unowned) {
        const o = found.get(r.ino);
        if (o) this.table.setOwner(r.sock, o.pid, o.comm, o.cgroup);
      }
    }
    for (const e of this.enrichers) e.enrich(this.table, now);
    this.table.tick(now);
    const nat = this.extras.nat;
    if (this.names) this.nameFlows(this.names, now);
    if (this.routes) this.resolveRoutes(this.routes);
    if (nat) {
      this.natting.run(async () => {
        try {
          await nat.resolve(this.table);
          this.natError = undefined;
        } catch (e) {
          this.natError = e instanceof Error ? e.message : String(e);
        }
      });
    }
    return rows;
  }

  private nameFlows(names: DnsNames, now: number): void {
    this.table.nameFlows((netns, pid, daddr) => names.name(netns, pid, daddr, now));
  }

  /** One look-up batch at a time; refreshes during it make it run once more, not queue up. */
  private resolveRoutes(routes: RouteResolver): void {
    this.routing.run(async () => {
      try {
        await routes.resolve(this.table);
        this.routeError = undefined;
      } catch (e) {
        this.routeError = e instanceof Error ? e.message : String(e);
      }
    });
  }

  /** Resolves once the routes of the flows as of the last refresh are set (or routeError says why not). */
  routesSettled(): Promise<void> {
    return this.routing.settled;
  }

  /** Resolves once the translations of the flows as of the last refresh are looked up. */
  natSettled(): Promise<void> {
    return this.natting.settled;
  }

  close(): void {
    this.unsubscribe();
  }
}

/** Every flow now (one snapshot), each with its route set; close the resolver when done asking it. */
export async function routedFlows(source: FlowSource): Promise<{ flows: Flow[]; routes: RouteResolver; nat: NatResolver }> {
  const routes = new RouteResolver();
  const nat = new NatResolver();
  const monitor = new FlowMonitor(source, {}, routes, { containers: new CgroupResolver(), nat });
  monitor.refresh();
  await Promise.all([monitor.routesSettled(), monitor.natSettled()]);
  nat.close();
  monitor.close();
  if (monitor.routeError) {
    routes.close();
    throw new Error(`cannot read the routes: ${monitor.routeError}`);
  }
  return { flows: monitor.table.flows(), routes, nat };
}

/** One async job at a time; runs asked for while one is under way make it run once more, not queue up. */
class Serial {
  settled: Promise<void> = Promise.resolve();
  private busy = false;
  private again = false;

  run(job: () => Promise<void>): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.settled = (async () => {
      do {
        this.again = false;
        await job();
      } while (this.again);
      this.busy = false;
    })();
  }
}
