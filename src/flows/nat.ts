/**
 * The address translation each flow goes through, from the kernel's conntrack
 * tables: nettrace's own network namespace's (where a host NATs its containers
 * and port forwards) and the flow's. The addon asks ctnetlink for the entry of
 * the flow's tuple, in batches, off the JavaScript thread; an entry once found
 * does not change its translation, so each flow is asked about until an entry
 * is found (a few refreshes at most), and never again. Look-ups are bounded per
 * refresh; those put off, those that failed and why are counted.
 */
import fs from 'node:fs';
import { ConntrackAnswer, ConntrackTuple, native, NativeConntrack } from '../native';
import { namedNamespaces } from './routes';
import { formatAddr } from '../decode';
import { parseIp } from '../filter/addr';

/** The flow's tuple as the far end sees it, past the translation. */
export interface Nat {
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  kind: 'snat' | 'dnat' | 'both';
}

/** What a flow needs to be looked up, and where the answer goes. */
export interface Translatable {
  netns: number;
  pid: number | null;
  proto: 'tcp' | 'udp';
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  state: string;
  nat: Nat | null;
}

export interface NatStats {
  /** Requests sent to the kernel. */
  lookups: number;
  /** Flows found in a conntrack table (with or without a translation), and those with one. */
  found: number;
  translated: number;
  /** Flows no table held an entry for after every try: traffic conntrack does not track. */
  untracked: number;
  /** Requests that could not be made or answered (see NatResolver.failures). */
  failed: number;
  /** Look-ups put off to a later refresh, past the per-refresh bound. */
  deferred: number;
}

const IPS_SRC_NAT = 1 << 4;
const IPS_DST_NAT = 1 << 5;
/** Refreshes a flow is asked about before it counts as untracked: a UDP socket's entry comes with its first datagram. */
const TRIES = 3;
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/** A v4-mapped address ("::ffff:a00:1") as conntrack keeps it: an IPv4 one ("10.0.0.1"). */
function plain(a: string): string {
  const ip = a.includes(':') ? parseIp(a) : null;
  return ip?.family === 4 ? ip.bytes.join('.') : a;
}

/** An IPv4 address written as a v4-mapped IPv6 socket's addresses are. */
const mapped = (v4: string): string => formatAddr(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4.split('.').map(Number)]), 0, 6);

const same = (a: ConntrackTuple, b: { saddr: string; sport: number; daddr: string; dport: number }): boolean =>
  a.saddr === b.saddr && a.sport === b.sport && a.daddr === b.daddr && a.dport === b.dport;

/**
 * The socket's tuple at the far end. The kernel found the entry by either of its tuples: a socket that
 * opened the connection has the original one, and the far end sees the reply tuple turned round; a socket
 * that accepted it has the reply one, and the far end sees the original turned round. null when the two agree.
 */
export function natOf(flow: { saddr: string; sport: number; daddr: string; dport: number }, a: ConntrackAnswer): Nat | null {
  if (!a.found || !a.orig || !a.reply) return null;
  const own = { saddr: plain(flow.saddr), sport: flow.sport, daddr: plain(flow.daddr), dport: flow.dport };
  const far = same(a.orig, own) ? a.reply : a.orig;
  const seen = { saddr: far.daddr, sport: far.dport, daddr: far.saddr, dport: far.sport };
  if (same(seen, own)) return null;
  const s = (a.status & IPS_SRC_NAT) !== 0;
  const d = (a.status & IPS_DST_NAT) !== 0;
  // written as the socket writes its own addresses: a v4-mapped socket's translation v4-mapped too
  const as = own.saddr !== flow.saddr ? mapped : (addr: string): string => addr;
  return { saddr: as(seen.saddr), sport: seen.sport, daddr: as(seen.daddr), dport: seen.dport, kind: s && d ? 'both' : d ? 'dnat' : 'snat' };
}

export class NatResolver {
  private kernel: NativeConntrack | undefined;
  readonly netns = fs.statSync('/proc/self/ns/net').ino;
  private readonly tries = new WeakMap<Translatable, number>();
  readonly stats: NatStats = { lookups: 0, found: 0, translated: 0, untracked: 0, failed: 0, deferred: 0 };
  /** Why requests failed, with how often (at most 64 reasons kept). */
  readonly failures = new Map<string, number>();
  /** Set while conntrack is not in the kernel at all: then nothing is translated and nothing is asked. */
  unavailable: string | undefined;

  constructor(private readonly maxPerRefresh = 4096) {}

  /** Looks up every connected flow not settled yet; one batch per namespace. */
  async resolve(flows: Translatable[]): Promise<void> {
    // asking would load the module: a kernel without it translates nothing (until something loads it)
    this.unavailable = fs.existsSync('/sys/module/nf_conntrack') ? undefined : 'the kernel has no connection tracking (nf_conntrack is not loaded)';
    if (this.unavailable) return;
    this.kernel ??= new (native().NativeConntrack)();
    const owners = new Map<number, Set<string>>();
    for (const f of flows) if (f.pid !== null) (owners.get(f.netns) ?? owners.set(f.netns, new Set()).get(f.netns)!).add(`/proc/${f.pid}/ns/net`);
    const wanted = flows.filter((f) => {
      const tries = this.tries.get(f);
      return tries !== undefined ? tries < TRIES : f.state !== 'LISTEN' && f.dport !== 0 && !UNSPECIFIED.has(f.daddr);
    });
    this.kernel.retain([this.netns, ...owners.keys()]);
    const now = wanted.slice(0, this.maxPerRefresh);
    this.stats.deferred += wanted.length - now.length;
    if (now.length === 0) return;
    let named: string[] | undefined;
    const queries = now.flatMap((f) => {
      const tuple = { proto: f.proto, saddr: plain(f.saddr), sport: f.sport, daddr: plain(f.daddr), dport: f.dport };
      const own = { netns: this.netns, nsPaths: [], ...tuple };
      if (f.netns === this.netns) return [own];
      return [own, { netns: f.netns, nsPaths: [...(owners.get(f.netns) ?? []), ...(named ??= namedNamespaces())], ...tuple }];
    });
    this.stats.lookups += queries.length;
    const answers = await this.kernel.lookup(queries);
    let i = 0;
    for (const f of now) {
      const mine = answers.slice(i, (i += f.netns === this.netns ? 1 : 2));
      this.apply(f, mine);
    }
  }

  private apply(f: Translatable, answers: ConntrackAnswer[]): void {
    for (const a of answers) {
      if (a.error === undefined) continue;
      this.stats.failed++;
      if (this.failures.has(a.error) || this.failures.size < 64) this.failures.set(a.error, (this.failures.get(a.error) ?? 0) + 1);
    }
    const found = answers.filter((a) => a.found);
    const tries = (this.tries.get(f) ?? 0) + 1;
    if (found.length === 0) {
      this.tries.set(f, tries);
      if (tries === TRIES && answers.every((a) => a.error === undefined)) this.stats.untracked++;
      return;
    }
    this.tries.set(f, TRIES); // settled
    this.stats.found++;
    // nettrace's own namespace first: that is where a host translates its containers' traffic
    f.nat = found.map((a) => natOf(f, a)).find((n) => n !== null) ?? null;
    if (f.nat) this.stats.translated++;
  }

  close(): void {
    this.kernel?.close();
  }
}
