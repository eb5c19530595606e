/** Keeps a FlowTable current from a running Tracer: its event stream plus a kernel snapshot per refresh. */
import fs from 'node:fs';
import { Clock } from '../events';
import { Tracer } from '../tracer';
import { ProcOwners } from './owners';
import { decodeSnapshot } from './snapshot';
import { FlowTable, FlowTableOptions } from './table';
import { foldSteering } from '../steering/fold';
import { SteeringSample } from '../steering/types';

export class FlowMonitor {
  readonly table: FlowTable;
  /** Set by each refresh when the tracer runs the steering hooks. */
  steering: SteeringSample | undefined;
  private readonly owners = new ProcOwners();
  /** This process's network namespace: the one snapshots list. */
  readonly netns = fs.statSync('/proc/self/ns/net').ino;
  private readonly unsubscribe: () => void;

  constructor(
    readonly tracer: Tracer,
    options: FlowTableOptions = {},
  ) {
    this.table = new FlowTable(options);
    const clock = new Clock();
    this.unsubscribe = tracer.onBatch((c) => {
      while (c.next()) this.table.applyRecord(c, clock);
    });
  }

  /** Folds in a snapshot of every socket now and ends the interval (rates, expiry). */
  refresh(now = Date.now()): void {
    const rows = decodeSnapshot(this.tracer.snapshot());
    this.table.applySnapshot(rows, now, this.netns);
    const unowned = rows.filter((r) => r.ino !== 0 && this.table.get(r.sock)?.pid === null);
    if (unowned.length > 0) {
      const found = this.owners.lookup(unowned.map((r) => r.ino));
      for (const r of unowned) {
        const o = found.get(r.ino);
        if (o) this.table.setOwner(r.sock, o.pid, o.comm);
      }
    }
    if (this.tracer.steeringEnabled) this.refreshSteering();
    this.table.tick(now);
  }

  private refreshSteering(): void {
    const raw = this.tracer.steering();
    const bySock = foldSteering(raw);
    for (const [sock, s] of bySock) this.table.setSteering(sock, s);
    this.steering = { cpus: raw.cpus, bySock, evictions: raw.evictions, unhashed: raw.unhashed };
  }

  close(): void {
    this.unsubscribe();
  }
}
