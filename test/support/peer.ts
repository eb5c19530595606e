/** The peer fixture (test/kernel/fixtures/peer.js): an exchange of connections, resets and refusals, and what nettrace must count of it. */
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { FIXTURES } from './paths';

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
