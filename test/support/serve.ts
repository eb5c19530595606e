/** A `nettrace serve` child, and its HTTP endpoint asked and scraped. */
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { parseExposition, Sample } from './exposition';
import { CLI } from './paths';
import { waitFor } from './wait';

export interface Served {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts `nettrace serve ARGS` and resolves once it says where it serves. */
export async function startServe(args: string[], env: NodeJS.ProcessEnv = process.env, children: ChildProcess[] = []): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const done = once(child, 'exit').then(([code, signal]) => ({ code, signal, stderr }));
  let exited = false;
  void done.then(() => (exited = true));
  await waitFor(() => exited || /serving http:\/\/\S+:\d+\/metrics\n/.test(stderr), 20000, 'nettrace serve to listen');
  const m = /serving http:\/\/\S+:(\d+)\/metrics\n/.exec(stderr);
  if (!m) throw new Error(`nettrace serve did not start: ${stderr}`);
  return { child, port: Number(m[1]), stderr: () => stderr, done };
}

export function get(port: number, urlPath: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function scrape(port: number): Promise<Sample[]> {
  const r = await get(port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parseExposition(r.body);
}
