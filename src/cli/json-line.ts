/**
 * A record's JSON line, written straight from the cursor: exactly what
 * JSON.stringify(toEvent(c)) gives (test/json-line.test.ts holds the two
 * together), without the event object and the generic serializer, which were
 * most of `nettrace --json`'s cost per record at churn.
 */
import { RecordCursor } from '../decode';
import { Clock } from '../events';
import { CommNames } from '../flows/comm-names';
import { CgroupResolver } from '../flows/cgroups';
import { Kind, UdpEvent } from '../layout';
import { connectResult, stateName } from '../tcp';

const us = (ns: number): number => Math.round(ns / 1000);
const orNull = (ns: number): string => (ns ? String(us(ns)) : 'null');

export class JsonLines {
  private readonly comms = new CommNames();
  /** Each name as a JSON string, escaped once. */
  private readonly quoted = new Map<string, string>();

  /** Each cgroup's container as JSON, for close records (bounded like the names). */
  private readonly containers = new Map<number, string>();

  /** With `cgroups`, close records end with the owner's `container` (null when unknown), as CgroupResolver.onClose adds it. */
  constructor(
    private readonly clock: Clock,
    private readonly cgroups?: CgroupResolver,
  ) {}

  line(c: RecordCursor): string {
    const kind = c.kind;
    const head =
      `,"ts":${this.clock.wallMs(c.tsNs)},"cpu":${c.cpu},"sock":${c.cookie},"netns":${c.netns},` +
      this.owner(c) +
      `,"family":${c.family},"saddr":"${c.saddr}","sport":${c.sport},"daddr":"${c.daddr}","dport":${c.dport}`;
    switch (kind) {
      case Kind.State:
        return `{"type":"state"${head},"old":"${stateName(c.oldState)}","new":"${stateName(c.newState)}","old_us":${orNull(c.inOldNs)}}`;
      case Kind.Connect:
        return `{"type":"connect"${head},"result":"${connectResult(c.err)}","latency_us":${us(c.latencyNs)}}`;
      case Kind.Accept:
        return `{"type":"accept"${head},"queued_us":${us(c.queuedNs)}}`;
      case Kind.Close:
        return (
          `{"type":"close"${head},"old":"${stateName(c.oldState)}","duration_us":${orNull(c.lifetimeNs)},"tx_bytes":${c.txBytes},` +
          `"rx_bytes":${c.rxBytes},"segs_out":${c.segsOut},"segs_in":${c.segsIn},"retrans":${c.retrans},"srtt_us":${c.srttUs}${this.container(c)}}`
        );
      case Kind.Udp:
        return (
          `{"type":"udp"${head},"event":"${c.udpEvent === UdpEvent.Open ? 'open' : 'close'}","duration_us":${orNull(c.lifetimeNs)},` +
          `"tx_bytes":${c.txBytes},"rx_bytes":${c.rxBytes},"tx_datagrams":${c.txDatagrams},"rx_datagrams":${c.rxDatagrams},"drops":${c.drops}` +
          `${c.udpEvent === UdpEvent.Open ? '' : this.container(c)}}`
        );
      default:
        throw new Error(`unknown record kind ${kind} at byte ${c.offset}`);
    }
  }

  private container(c: RecordCursor): string {
    if (!this.cgroups) return '';
    if (!c.hasOwner) return ',"container":null';
    const id = c.cgroup;
    let json = this.containers.get(id);
    if (json === undefined) {
      const found = this.cgroups.lookup(id);
      json = JSON.stringify(found ?? null);
      if (this.containers.size >= 4096) this.containers.clear();
      if (found) this.containers.set(id, json); // an id not found yet may be found after the next walk
    }
    return `,"container":${json}`;
  }

  private owner(c: RecordCursor): string {
    if (!c.hasOwner) return '"pid":null,"tid":null,"uid":null,"comm":null,"cgroup":null';
    const pid = c.pid;
    const name = this.comms.name(c, pid);
    let quoted = this.quoted.get(name);
    if (quoted === undefined) {
      if (this.quoted.size >= 4096) this.quoted.clear(); // bounded, however many names come and go
      this.quoted.set(name, (quoted = JSON.stringify(name)));
    }
    return `"pid":${pid},"tid":${c.tid},"uid":${c.uid},"comm":${quoted},"cgroup":${c.cgroup}`;
  }
}
