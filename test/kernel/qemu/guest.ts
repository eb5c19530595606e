/**
 * Runs inside the qemu guest that test/kernel/qemu.test.ts boots: the real addon and
 * the committed BPF object against the guest's kernel. It makes the same
 * traffic as the core tests and writes what nettrace recorded to
 * <out>/result.json; the host checks it with test/support/expect.
 *   usage: node guest.js OUT_DIR
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeSnapshot, NettraceEvent } from '../../../src';
import { NativeHook } from '../../../src/native';
import { ConnectionRun, Owner } from '../../support/expect';
import { close, listen } from '../../support/sockets';
import { traceConnections, traceRefused } from '../../support/scenarios';
import { Tracers } from '../../support/tracers';

export interface GuestReport {
  kernel: string;
  /** How each hook attached with nothing disabled. */
  hooks: NativeHook[];
  /** Whether the iter/tcp snapshot listed a listener of this process. */
  snapshotSawListener: boolean;
  connections: { events: NettraceEvent[]; run: ConnectionRun; drops: number }[];
  refused: { events: NettraceEvent[]; run: { family: 4 | 6; host: string; port: number; owner: Owner } }[];
  /** Accepts through the tracepoint fallback (fexit disabled), on this same kernel. */
  fallback: { hooks: NativeHook[]; events: NettraceEvent[]; run: ConnectionRun };
}

const tracers = new Tracers();
const start = tracers.start;

const FAMILIES = [
  [4, '127.0.0.1'],
  [6, '::1'],
] as const;
const COUNTS = { count: 10, send: 1500, reply: 70000 };

async function main(out: string): Promise<void> {
  const server = await listen('127.0.0.1', 1, 1);
  const tracer = start({});
  const hooks = tracer.hooks;
  const snapshotSawListener = decodeSnapshot(tracer.snapshot()).some((r) => r.sport === server.port && r.state === 10);
  await tracer.stop();
  await close(server);

  const connections: GuestReport['connections'] = [];
  const refused: GuestReport['refused'] = [];
  for (const [family, host] of FAMILIES) {
    const traced = await traceConnections(start, family, host, COUNTS);
    connections.push({ events: traced.events, run: traced.run, drops: traced.tracer.stats().drops });
    refused.push(await traceRefused(start, family, host));
  }
  const fb = await traceConnections(start, 4, '127.0.0.1', COUNTS, { disable: ['fexit'] });
  const report: GuestReport = {
    kernel: os.release(),
    hooks,
    snapshotSawListener,
    connections,
    refused,
    fallback: { hooks: fb.tracer.hooks, events: fb.events, run: fb.run },
  };
  fs.writeFileSync(path.join(out, 'result.json'), JSON.stringify(report));
}

main(process.argv[2]).then(
  () => process.exit(0),
  async (e) => {
    process.stderr.write(`guest: ${e instanceof Error ? e.stack : String(e)}\n`);
    await tracers.stopAll();
    process.exit(1);
  },
);
