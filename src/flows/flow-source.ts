/**
 * What a FlowMonitor reads flows from, and what it runs at each refresh: the
 * flows' side of the tracer, declared here so that flows/ imports nothing
 * above it. Tracer satisfies FlowSource; tests hand a fake of their own.
 */
import { RecordCursor } from '../record-cursor';
import type { FlowTable } from './flow-table';

export interface FlowSource {
  /** Calls `fn` with a cursor over each batch of records (reused: copy what you keep); returns the unsubscribe. */
  onBatch(fn: (records: RecordCursor) => void): () => void;
  /** Every TCP socket of the namespace now, as packed struct nt_flow (see snapshot.ts). */
  snapshot(): Buffer;
  /** Every UDP socket of the namespace now, as packed struct nt_udp_flow. */
  snapshotUdp(): Buffer;
  /** Per remote endpoint traffic of unconnected UDP sockets, as packed (nt_udp_peer, nt_udp_peer_bytes) pairs. */
  udpPeers(): Buffer;
  /** Whether DNS records arrive: flows are then named by the lookups seen. */
  readonly dnsEnabled: boolean;
  /**
   * What else a FlowMonitor over this source adds to its flows at each refresh,
   * made afresh for each monitor (a tracer running the steering hooks gives one
   * that sets each flow's steering figures).
   */
  flowEnrichers(): FlowEnricher[];
}

/** Adds what it knows to the table's flows; a FlowMonitor runs it at each refresh, once the snapshot is folded in. */
export interface FlowEnricher {
  enrich(table: FlowTable, now: number): void;
}
