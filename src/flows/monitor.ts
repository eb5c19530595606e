/** Keeps a FlowTable current from a running Tracer: its event stream plus a kernel snapshot per refresh. */
import fs from 'node:fs';
import { Clock } from '../events';
import { Tracer } from '../tracer';
import { ProcOwners } from './owners';
import { decodePeers, decodeSnapshot, decodeUdpSnapshot } from './snapshot';
import { FlowTable, FlowTableOptions } from './table';

export class FlowMonitor {
  readonly table: FlowTable;
  private readonly owners = new ProcOwners();
  private readonly netns = fs.statSync('/proc/self/ns/net').ino;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly tracer: Tracer,
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
    const udp = decodeUdpSnapshot(this.tracer.snapshotUdp());
    this.table.applyUdpSnapshot(udp, decodePeers(this.tracer.udpPeers()), now, this.netns);
    const unowned = [...rows, ...udp].filter((r) => r.ino !== 0 && this.table.get(r.sock)?.pid === null);
    if (unowned.length > 0) {
      const found = this.owners.lookup(unowned.map((r) => r.ino));
      for (const r of unowned) {
        const o = found.get(r.ino);
        if (o) this.table.setOwner(r.sock, o.pid, o.comm);
      }
    }
    this.table.tick(now);
  }

  close(): void {
    this.unsubscribe();
  }
}
