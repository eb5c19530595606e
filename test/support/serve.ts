/** Shared by the metrics tests: a `nettrace serve` child, the peer fixture, scraping. */
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CLI, FIXTURES, waitFor } from './helpers';

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

/** Ids of the BPF programs process `pid` holds open, from its file descriptors' fdinfo. */
export function programsOf(pid: number): number[] {
  const ids: number[] = [];
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.push(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (comments skipped), label values unescaped. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const text = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/y;
    let l: RegExpExecArray | null;
    let at = 0;
    while ((l = re.exec(text)) !== null) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      at = re.lastIndex;
    }
    if (at !== text.length) throw new Error(`bad labels: ${line}`);
    out.push({ name: m[1], labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `labels`; 0 when there are none. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export async function scrape(port: number): Promise<Sample[]> {
  const r = await get(port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parseExposition(r.body);
}

export interface Exchange {
  ok: number;
  resets: number;
  refused: number;
  send: number;
  reply: number;
}

/** `node ARGS`, inside network namespace `netns` when given (ip netns exec keeps the pid). */
function nodeIn(netns: string | undefined): [string, string[]] {
  return netns === undefined ? [process.execPath, []] : ['ip', ['netns', 'exec', netns, process.execPath]];
}

/** The peer fixture's server (nt-mserver); resolves with its pid and port. */
export async function peerServer(host: string, x: Exchange, children: ChildProcess[], netns?: string): Promise<{ child: ChildProcess; pid: number; port: number }> {
  const [cmd, pre] = nodeIn(netns);
  const child = spawn(cmd, [...pre, path.join(FIXTURES, 'peer.js'), 'server', host, String(x.send), String(x.reply)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, ...(JSON.parse(line.toString()) as { pid: number; port: number }) };
}

/** The peer fixture's client (nt-mclient, or `title`), run to its end; resolves with its pid. */
export async function peerClient(host: string, port: number, refusedPort: number, x: Exchange, title?: string, netns?: string): Promise<number> {
  const args = [host, port, x.ok, x.resets, refusedPort, x.refused, x.send, x.reply].map(String);
  const env = title === undefined ? process.env : { ...process.env, NT_TITLE: title };
  const [cmd, pre] = nodeIn(netns);
  const child = spawn(cmd, [...pre, path.join(FIXTURES, 'peer.js'), 'client', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`peer client exited ${code}`);
  return (JSON.parse(out) as { pid: number }).pid;
}

/** What the peer fixture's exchange makes nettrace count, by process name. */
export function expectedCounts(x: Exchange): Record<string, [string, Record<string, string>, number][]> {
  const opened = x.ok + x.resets;
  return {
    client: [
      ['nettrace_tcp_connects_total', { result: 'ok' }, opened],
      ['nettrace_tcp_connects_total', { result: 'refused' }, x.refused],
      ['nettrace_tcp_closes_total', {}, opened + x.refused],
      ['nettrace_tcp_resets_total', {}, x.resets],
      ['nettrace_process_bytes_total', { direction: 'tx' }, opened * x.send],
      ['nettrace_process_bytes_total', { direction: 'rx' }, opened * x.reply],
    ],
    server: [
      ['nettrace_tcp_accepts_total', {}, opened],
      ['nettrace_tcp_closes_total', {}, opened],
      ['nettrace_tcp_resets_total', {}, x.resets],
      ['nettrace_process_bytes_total', { direction: 'tx' }, opened * x.reply],
      ['nettrace_process_bytes_total', { direction: 'rx' }, opened * x.send],
    ],
  };
}
