/**
 * Traffic the tests trace and then check with ./expect: connections from the
 * fixture client to a listener of this process, and a refused connect. Run on
 * this machine's kernel by the core tests and on the qemu guest's by qemu/guest.
 */
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { Clock, NettraceEvent, toEvent, TraceOptions, Tracer } from '../../src';
import { ConnectionRun, Owner } from './expect';
import { close, closedPort, listen, runClient } from './sockets';
import { waitFor } from './wait';

export type StartTracer = (options: TraceOptions) => Tracer;

export const SELF: Owner = { pid: process.pid, comm: fs.readFileSync('/proc/self/comm', 'utf8').trim() };

export function collect(tracer: Tracer): NettraceEvent[] {
  const clock = new Clock();
  const events: NettraceEvent[] = [];
  tracer.onBatch((c) => {
    while (c.next()) events.push(toEvent(c, clock));
  });
  return events;
}

export const onPort = (port: number) => (c: { sport: number; dport: number }) => c.sport === port || c.dport === port;

/** `count` connections from the fixture client, each sending `send` bytes and getting `reply` back, traced from before the first. */
export async function traceConnections(
  start: StartTracer,
  family: 4 | 6,
  host: string,
  counts: { count: number; send: number; reply: number },
  options: TraceOptions = {},
): Promise<{ events: NettraceEvent[]; run: ConnectionRun; tracer: Tracer }> {
  const { count, send, reply } = counts;
  const server = await listen(host, send, reply);
  try {
    const tracer = start({ ...options, filter: onPort(server.port) });
    const events = collect(tracer);
    const client = await runClient(host, server.port, count, send, reply);
    await waitFor(() => events.filter((e) => e.type === 'close').length >= 2 * count, 10000, 'every close');
    await tracer.stop();
    const run = { family, host, port: server.port, count, send, reply, server: SELF, client: { ...client, comm: 'nt-client' } };
    return { events, run, tracer };
  } finally {
    await close(server);
  }
}

/** One connect from this process to a port nothing listens on. */
export async function traceRefused(start: StartTracer, family: 4 | 6, host: string) {
  const port = await closedPort(host);
  const tracer = start({ filter: onPort(port) });
  const events = collect(tracer);
  const s = net.connect({ host, port });
  const [err] = await once(s, 'error');
  if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw err;
  await waitFor(() => events.some((e) => e.type === 'close'), 5000, 'the close record');
  await tracer.stop();
  return { events, run: { family, host, port, owner: SELF } };
}
