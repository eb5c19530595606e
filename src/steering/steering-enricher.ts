/**
 * Receive steering joined to flows: at each FlowMonitor refresh, the kernel's
 * steering counters folded per socket and set on the table's flows. A tracer
 * running the steering hooks gives one of these to every FlowMonitor over it
 * (Tracer.flowEnrichers), as routes and translations are resolved for it.
 */
import type { FlowEnricher } from '../flows/flow-source';
import type { FlowTable } from '../flows/flow-table';
import { foldSteering } from './fold';
import { RawSteering, SteeringSample } from './types';

/** Where the counters come from: a tracer started with the steering hooks. */
export interface SteeringSource {
  /** The receive-steering counters now, per socket, as the kernel keeps them. */
  steering(): RawSteering;
  /** Lets the kernel forget the counters of these sockets (closed and reported). */
  steeringForget(cookies: number[]): void;
}

export class SteeringEnricher implements FlowEnricher {
  /** The counters as of the last refresh; undefined before the first. */
  sample: SteeringSample | undefined;

  constructor(readonly source: SteeringSource) {}

  enrich(table: FlowTable): void {
    const raw = this.source.steering();
    const bySock = foldSteering(raw);
    for (const [sock, s] of bySock) table.setSteering(sock, s);
    this.sample = { cpus: raw.cpus, bySock, evictions: raw.evictions, unhashed: raw.unhashed };
  }
}
