/** The nettrace CLI as a child process of a test: its output as it comes, and the moment it has attached. */
import { spawn, ChildProcess, StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BpfIds, normalized } from './bpf-objects';
import { CLI } from './paths';
import { waitFor } from './wait';

export interface Captured {
  out: () => string;
  err: () => string;
  /** stdout exactly as written, for output whose bytes matter. */
  outBytes: () => Buffer;
}

/** A child's stdout and stderr so far, collected as they arrive. */
export function captured(child: ChildProcess): Captured {
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d) => (err += d));
  return { out: () => Buffer.concat(out).toString(), err: () => err, outBytes: () => Buffer.concat(out) };
}

export function spawnCli(args: string[], opts: { uid?: number; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, env: opts.env });
}

export interface Attached {
  child: ChildProcess;
  io: Captured;
  /** The exit code; null when a signal ended it. */
  exited: Promise<number | null>;
  /** The kernel objects it attached; throws if it ended without attaching. */
  ids: () => BpfIds;
}

export interface AttachOptions {
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr: piped and captured unless given (a file descriptor, 'inherit'). */
  stdout?: 'pipe' | 'inherit' | number;
  stderr?: 'pipe' | 'inherit' | number;
  /** Every child started is pushed here, for the test file to kill what is left. */
  children?: ChildProcess[];
}

/**
 * Starts the CLI with ARGS and resolves once it has attached: it writes its kernel ids to the file
 * NETTRACE_KERNEL_IDS names then, a line of JSON; or once it has ended without attaching. `tag`
 * names that file under the temporary directory.
 */
export async function startAttached(args: string[], tag: string, opts: AttachOptions = {}): Promise<Attached> {
  const file = path.join(os.tmpdir(), `${tag}-ids-${process.pid}`);
  fs.rmSync(file, { force: true });
  const stdio: StdioOptions = ['ignore', opts.stdout ?? 'pipe', opts.stderr ?? 'pipe'];
  const child = spawn(process.execPath, [CLI, ...args], { stdio, env: { ...(opts.env ?? process.env), NETTRACE_KERNEL_IDS: file } });
  opts.children?.push(child);
  const io = captured(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const written = () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').endsWith('\n');
  let ids: BpfIds | undefined;
  try {
    await waitFor(() => written() || child.exitCode !== null || child.signalCode !== null, 20000, `nettrace ${args.join(' ')} to attach`);
    if (written()) ids = normalized(JSON.parse(fs.readFileSync(file, 'utf8')) as BpfIds);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    fs.rmSync(file, { force: true });
  }
  return {
    child,
    io,
    exited,
    ids: () => {
      if (!ids) throw new Error(`nettrace ${args.join(' ')} ended (${child.exitCode ?? child.signalCode}) without attaching: ${io.err()}`);
      return ids;
    },
  };
}
