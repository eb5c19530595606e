/** Loopback traffic the tests trace: a listener in this process, the fixture client in another, a port nothing listens on. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { FIXTURES } from './paths';

export interface ClientResult {
  pid: number;
  sent: number;
  received: number;
  ports: number[];
}

/**
 * Runs test/kernel/fixtures/client.js as a separate process named nt-client: it opens
 * `count` connections one after another, sends `send` bytes, reads `expect`
 * bytes, then closes first.
 */
export async function runClient(host: string, port: number, count: number, send: number, expect: number): Promise<ClientResult> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'client.js'), host, String(port), String(count), String(send), String(expect)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`client exited ${code}`);
  return JSON.parse(out) as ClientResult;
}

/**
 * A listener in this process: reads `expect` bytes from each connection, answers
 * with `reply` bytes, and closes once the client has closed.
 */
export async function listen(host: string, expect: number, reply: number): Promise<net.Server & { port: number }> {
  const server = net.createServer((s) => {
    let got = 0;
    s.on('data', (d) => {
      got += d.length;
      if (got === expect) s.write(Buffer.alloc(reply, 0x61));
    });
    s.on('error', () => {});
  });
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return Object.assign(server, { port });
}

export function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on: bound and closed again. */
export async function closedPort(host: string): Promise<number> {
  const s = net.createServer().listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await close(s);
  return port;
}
