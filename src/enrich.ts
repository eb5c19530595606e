/**
 * Events made from records, with what one record does not hold: the peers of
 * an unconnected UDP socket's close (src/flows/close-peers), and with the dns
 * events on, lookups paired from DNS records (src/dns/lookups) and the name
 * each event's remote address was looked up by (src/dns/names). What the
 * library's iterator and the CLI's stream both make.
 */
import { RecordCursor } from './record-cursor';
import { DnsLookups } from './dns/lookups';
import { DnsNames } from './dns/names';
import { Clock, DnsEvent, NettraceEvent, toEvent, UdpEvent } from './events';
import { ClosePeers, isUnconnectedUdpClose } from './flows/close-peers';
import { Kind } from './layout';

export interface EnrichOptions {
  /** Pair DNS records into lookups and name remotes (the tracer runs the dns hook). */
  dns: boolean;
  /** A query unanswered this long is a timeout (default 5000 ms). */
  dnsTimeoutMs?: number;
}

export class EventMaker {
  readonly lookups: DnsLookups | undefined;
  private readonly names: DnsNames | undefined;
  private readonly closes: ClosePeers;
  private readonly done: DnsEvent[] = [];

  /** `readPeers` dumps the kernel's udp_peers map (Tracer.udpPeers). */
  constructor(
    private readonly clock: Clock,
    readPeers: () => Buffer,
    options: EnrichOptions,
  ) {
    this.closes = new ClosePeers(readPeers);
    if (!options.dns) return;
    const names = (this.names = new DnsNames());
    this.lookups = new DnsLookups(
      (e) => {
        this.done.push(e);
        if (!e.timeout) names.learn(e);
      },
      { timeoutMs: options.dnsTimeoutMs },
    );
  }

  /** Call at each batch: a batch's closes share one read of the peers map. */
  nextBatch(): void {
    this.closes.nextBatch();
  }

  /** The event of the record under the cursor; null for a DNS record, which ends up in a lookup (see take()). */
  event(c: RecordCursor): NettraceEvent | null {
    if (c.kind === Kind.Dns) {
      this.lookups?.add(c, this.clock);
      return null;
    }
    const e = isUnconnectedUdpClose(c) ? this.closes.attach(toEvent(c, this.clock) as UdpEvent) : toEvent(c, this.clock);
    if (this.names && e.dport !== 0) e.rname = this.names.name(e.netns, e.pid, e.daddr);
    return e;
  }

  /** The lookups completed (answered, or timed out as of `expire()`), oldest first. */
  take(): DnsEvent[] {
    return this.done.splice(0);
  }

  /** Times out the queries unanswered too long. */
  expire(): void {
    this.lookups?.expire(Number(process.hrtime.bigint()));
  }

  /** Times out every query still waiting: tracing ended. */
  flush(): void {
    this.lookups?.flush();
  }
}
