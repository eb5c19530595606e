/**
 * The name each answered address was asked by, per network namespace: what
 * flows show as `rname`. An answer to a process names that process's flows
 * first; any answer in the namespace names the others. Entries live for the
 * answer's TTL (at least MIN_HOLD_MS: local zones answer with TTL 0, and a
 * program connects just after it looked up) and the maps are bounded, the
 * least recently answered leaving first, counted in `evictions`.
 */
import { DnsEvent } from '../events';

export interface DnsNamesOptions {
  /** Addresses remembered per map (default 65536). */
  maxEntries?: number;
}

interface Entry {
  /** The name asked. */
  name: string;
  /** The CNAME chain the answer went through to the address. */
  cnames: string[];
  expires: number;
}

const MIN_HOLD_MS = 60_000;

export class DnsNames {
  /** Entries pushed out to stay within maxEntries before their TTL ended. */
  evictions = 0;
  private readonly max: number;
  /** `netns addr` → entry, and `netns pid addr` → entry. */
  private readonly byNetns = new Map<string, Entry>();
  private readonly byProcess = new Map<string, Entry>();

  constructor(options: DnsNamesOptions = {}) {
    this.max = options.maxEntries ?? 65536;
  }

  /** Remembers the addresses of an answered lookup. */
  learn(e: DnsEvent, nowMs = Date.now()): void {
    for (const a of e.answers) {
      if (a.type !== 'A' && a.type !== 'AAAA') continue;
      const entry = { name: e.name, cnames: e.cnames, expires: nowMs + Math.max(a.ttl * 1000, MIN_HOLD_MS) };
      this.put(this.byNetns, `${e.netns} ${a.data}`, entry);
      if (e.pid !== null) this.put(this.byProcess, `${e.netns} ${e.pid} ${a.data}`, entry);
    }
  }

  /** The name `addr` was asked by in `netns`, by `pid` if it asked, else by any process there; null if none. */
  name(netns: number, pid: number | null, addr: string, nowMs = Date.now()): string | null {
    const own = pid === null ? undefined : this.live(this.byProcess, `${netns} ${pid} ${addr}`, nowMs);
    return (own ?? this.live(this.byNetns, `${netns} ${addr}`, nowMs))?.name ?? null;
  }

  /** The CNAME chain of the answer that named it, as name() chose it. */
  cnames(netns: number, pid: number | null, addr: string, nowMs = Date.now()): string[] {
    const own = pid === null ? undefined : this.live(this.byProcess, `${netns} ${pid} ${addr}`, nowMs);
    return (own ?? this.live(this.byNetns, `${netns} ${addr}`, nowMs))?.cnames ?? [];
  }

  get size(): number {
    return this.byNetns.size;
  }

  private put(map: Map<string, Entry>, key: string, entry: Entry): void {
    map.delete(key); // re-answered: newest again
    map.set(key, entry);
    if (map.size > this.max) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
      this.evictions++;
    }
  }

  private live(map: Map<string, Entry>, key: string, nowMs: number): Entry | undefined {
    const e = map.get(key);
    if (e && e.expires <= nowMs) {
      map.delete(key);
      return undefined;
    }
    return e;
  }
}
