/** A churning peer: test/kernel/fixtures/churner.js opening connections at a steady rate in a process of its own. */
import { spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { FIXTURES } from './paths';
import { waitFor } from './wait';

export interface Churner {
  child: ChildProcess;
  pid: number;
  /** Stops starting connections, lets the open ones finish; resolves with how many completed. */
  stop(): Promise<{ conns: number; errors: number }>;
}

/** test/kernel/fixtures/churner.js: `rate` connections a second to host:port until stopped. */
export async function churn(host: string, port: number, rate: number, bytes = 10): Promise<Churner> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'churner.js'), host, String(port), String(rate), String(bytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('\n'), 10000, 'the churner to start');
  const { pid } = JSON.parse(out.split('\n')[0]) as { pid: number };
  return {
    child,
    pid,
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      return JSON.parse(out.trim().split('\n').pop()!) as { conns: number; errors: number };
    },
  };
}
