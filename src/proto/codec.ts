/**
 * The one mapping between nettrace's TypeScript objects and proto/nettrace.proto's frames, both ways:
 * the items a stream carries, and each as its frame. The messages inside are mapped beside it, a new
 * field a line in each direction (and one in the .proto): events in event-codec.ts, flows and rollups
 * in flow-codec.ts, what they are made of in fields.ts.
 */
import { NettraceEvent } from '../events';
import { FlowSnapshot } from '../flows/rollup';
import { SocketIdent, SocketOwner } from '../flows/snapshot';
import { TracerStats } from '../trace-options';
import { eventFrom, eventOf } from './event-codec';
import { identOf, InvalidFrame, msToUs, num, ownerFields, ownerOf, socketOf, U64, usToMs } from './fields';
import { flowFrom, flowOf, rollupFrom, rollupOf } from './flow-codec';
import { nettrace } from './nettrace.pb';
import pb = nettrace.v1;

export const MAGIC = 'nettrace';
export const FORMAT_VERSION = 1;

/** The first frame: who wrote the stream, where and when. */
export interface StreamHeader {
  type: 'header';
  version: number;
  producer: string;
  hostname: string;
  /** Wall clock, ms since the epoch. */
  started: number;
  command: string;
}

export interface StatsRecord extends TracerStats {
  type: 'stats';
  /** Wall clock, ms since the epoch. */
  ts: number;
  /** Records the CLI did not write because the reader of its output was behind. */
  outputDrops?: number;
}

/** A flow whose segments are processed on other CPUs than its reader's (RPS/RFS, see the .proto). */
export interface SteeringRecord extends SocketIdent, SocketOwner {
  type: 'steering';
  ts: number;
  processed_cpus: number[];
  read_cpus: number[];
  /** Share of received segments processed on the reader's CPU, 0 to 1. */
  locality: number;
}

/** Everything a stream carries. */
export type StreamItem = StreamHeader | NettraceEvent | FlowSnapshot | StatsRecord | SteeringRecord;

/** The frame that carries `item`. */
export function toFrame(item: StreamItem): pb.Frame.$Properties {
  switch (item.type) {
    case 'header':
      return {
        header: { magic: MAGIC, version: item.version, producer: item.producer, hostname: item.hostname, started_us: msToUs(item.started), command: item.command },
      };
    case 'snapshot':
      return {
        snapshot: {
          ts_us: msToUs(item.ts),
          flows: item.flows.map(flowOf),
          processes: item.processes.map(rollupOf),
          hosts: item.hosts.map(rollupOf),
          process_hosts: item.process_hosts.map(rollupOf),
        },
      };
    case 'stats': {
      const { records, bytes, batches, drops, missed, evictions } = item;
      const more = {
        queue_drops: item.queueDrops,
        snapshot_drops: item.snapshotDrops,
        flow_evictions: item.flowEvictions,
        name_evictions: item.nameEvictions,
        ring_produced: item.ringProduced,
        output_drops: item.outputDrops,
        // the addon's generated types are interfaces, which TypeScript will not take as a map: copied into plain objects
        drops_by_kind: { ...item.dropsByKind },
        hook_runs: { ...item.hookRuns },
      };
      return { stats: { ts_us: msToUs(item.ts), records, bytes, batches, drops, missed, evictions, ...more } };
    }
    case 'steering':
      return {
        steering: {
          ts_us: msToUs(item.ts),
          socket: socketOf(item),
          owner: ownerOf(item),
          processed_cpus: item.processed_cpus,
          read_cpus: item.read_cpus,
          locality: item.locality,
        },
      };
    default:
      return { event: eventOf(item) };
  }
}

function countsByName(m: { [k: string]: U64 } | null | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, num(v)]));
}

/** The item a decoded frame carries; undefined for a frame kind this version does not know. */
export function fromFrame(frame: pb.Frame): StreamItem | undefined {
  switch (frame.body) {
    case 'header': {
      const h = frame.header!;
      if (h.magic !== MAGIC) throw new InvalidFrame('the header is not nettrace\'s');
      return { type: 'header', version: h.version ?? 0, producer: h.producer ?? '', hostname: h.hostname ?? '', started: usToMs(h.started_us), command: h.command ?? '' };
    }
    case 'event':
      return eventFrom(frame.event as pb.Event);
    case 'snapshot': {
      const s = frame.snapshot!;
      return {
        type: 'snapshot',
        ts: usToMs(s.ts_us),
        flows: (s.flows ?? []).map(flowFrom),
        processes: (s.processes ?? []).map(rollupFrom),
        hosts: (s.hosts ?? []).map(rollupFrom),
        process_hosts: (s.process_hosts ?? []).map(rollupFrom),
      };
    }
    case 'stats': {
      const s = frame.stats!;
      return {
        type: 'stats',
        ts: usToMs(s.ts_us),
        records: num(s.records),
        bytes: num(s.bytes),
        batches: num(s.batches),
        drops: num(s.drops),
        missed: num(s.missed),
        evictions: num(s.evictions),
        queueDrops: num(s.queue_drops),
        snapshotDrops: num(s.snapshot_drops),
        flowEvictions: num(s.flow_evictions),
        nameEvictions: num(s.name_evictions),
        ringProduced: num(s.ring_produced),
        dropsByKind: countsByName(s.drops_by_kind) as unknown as TracerStats['dropsByKind'],
        hookRuns: countsByName(s.hook_runs) as unknown as TracerStats['hookRuns'],
        ...(s.output_drops === null || s.output_drops === undefined ? {} : { outputDrops: num(s.output_drops) }),
      };
    }
    case 'steering': {
      const s = frame.steering!;
      return {
        type: 'steering',
        ts: usToMs(s.ts_us),
        ...identOf(s.socket),
        ...ownerFields(s.owner),
        processed_cpus: s.processed_cpus ?? [],
        read_cpus: s.read_cpus ?? [],
        locality: s.locality ?? 0,
      };
    }
    default:
      return undefined;
  }
}
