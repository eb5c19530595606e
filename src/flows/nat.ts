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
import { ConntrackAnswer, ConntrackQuery, ConntrackTuple, native, NativeConntrack } from '../native';
import { namedNamespaces } from './routes';
import { formatAddr } from '../record-cursor';
import { parseIp } from '../filter/addr';

/** The flow's tuple as the far end sees it, past the translation. */
export interface Nat {
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  kind: 'snat' | 'dnat' | 'both';
}

/** A flow whose translation is not settled yet: what a look-up needs, and how often it was asked about. */
export interface NatWant {
  sock: number;
  netns: number;
  pid: number | null;
  proto: 'tcp' | 'udp';
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  tries: number;
}

/** Where translations go: the flow table keeps one per flow (a flow once settled is not asked about again). */
export interface NatTargets {
  /** Connected flows asked about fewer than `tries` times, at most `max`; `more` counts the rest. */
  untranslated(tries: number, max: number): { wants: NatWant[]; more: number };
  /** Sets a flow's translation; `settled` ends its look-ups, else it counts one more try. */
  setNat(sock: number, nat: Nat | null, settled: boolean): void;
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
export const NAT_TRIES = 3;

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
  readonly stats: NatStats = { lookups: 0, found: 0, translated: 0, untracked: 0, failed: 0, deferred: 0 };
  /** Why requests failed, with how often (at most 64 reasons kept). */
  readonly failures = new Map<string, number>();
  /** Set while conntrack is not in the kernel at all: then nothing is translated and nothing is asked. */
  unavailable: string | undefined;

  constructor(private readonly maxPerRefresh = 2048) {}

  /** Looks up every connected flow of `targets` not settled yet; one batch per namespace. */
  async resolve(targets: NatTargets): Promise<void> {
    // asking would load the module: a kernel without it translates nothing (until something loads it)
    this.unavailable = fs.existsSync('/sys/module/nf_conntrack') ? undefined : 'the kernel has no connection tracking (nf_conntrack is not loaded)';
    if (this.unavailable) return;
    this.kernel ??= new (native().NativeConntrack)();
    const { wants, more } = targets.untranslated(NAT_TRIES, this.maxPerRefresh);
    this.stats.deferred += more;
    const namespaces = new Set(wants.map((w) => w.netns));
    this.kernel.retain([this.netns, ...namespaces]);
    if (wants.length === 0) return;
    const owners = new Map<number, Set<string>>();
    for (const w of wants) if (w.pid !== null) (owners.get(w.netns) ?? owners.set(w.netns, new Set()).get(w.netns)!).add(`/proc/${w.pid}/ns/net`);
    // a namespace of ours that tracks nothing (no NAT, no stateful rules) has no entry to find: ask only the flows'
    const askOwn = trackedHere();
    let named: string[] | undefined;
    const perFlow = wants.map((w) => {
      const tuple = { proto: w.proto, saddr: plain(w.saddr), sport: w.sport, daddr: plain(w.daddr), dport: w.dport };
      const asks: ConntrackQuery[] = askOwn ? [{ netns: this.netns, nsPaths: [], ...tuple }] : [];
      if (w.netns !== this.netns) asks.push({ netns: w.netns, nsPaths: [...(owners.get(w.netns) ?? []), ...(named ??= namedNamespaces())], ...tuple });
      return asks;
    });
    const queries = perFlow.flat();
    this.stats.lookups += queries.length;
    const answers = queries.length > 0 ? await this.kernel.lookup(queries) : [];
    let i = 0;
    wants.forEach((w, k) => this.apply(targets, w, answers.slice(i, (i += perFlow[k].length))));
  }

  private apply(targets: NatTargets, w: NatWant, answers: ConntrackAnswer[]): void {
    for (const a of answers) {
      if (a.error === undefined) continue;
      this.stats.failed++;
      if (this.failures.has(a.error) || this.failures.size < 64) this.failures.set(a.error, (this.failures.get(a.error) ?? 0) + 1);
    }
    const found = answers.filter((a) => a.found);
    if (found.length === 0) {
      if (w.tries + 1 === NAT_TRIES && answers.every((a) => a.error === undefined)) this.stats.untracked++;
      targets.setNat(w.sock, null, false);
      return;
    }
    this.stats.found++;
    // nettrace's own namespace first: that is where a host translates its containers' traffic
    const nat = found.map((a) => natOf(w, a)).find((n) => n !== null) ?? null;
    if (nat) this.stats.translated++;
    targets.setNat(w.sock, nat, true);
  }

  close(): void {
    this.kernel?.close();
  }
}

/** Whether nettrace's own network namespace holds any conntrack entry (its count is per namespace). */
function trackedHere(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'latin1').trim() !== '0';
  } catch {
    return true; // unreadable: ask, and let a failure be counted
  }
}
