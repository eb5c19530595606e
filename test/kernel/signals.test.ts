/**
 * Every command, stopped by every signal while real connections flow: the
 * kernel must keep nothing of it (programs, links and maps checked by id),
 * nothing is ever pinned, and `top` gives the terminal back.
 *
 * Each run holds the command at its NETTRACE_KERNEL_IDS FIFO, where it has
 * attached everything: its fdinfo then lists every BPF object it holds, which
 * must be what it reports. Long-running commands are released and signalled
 * once their output shows the test's traffic; one-shot commands are signalled
 * while held, so the signal lands with everything attached.
 *
 * A new command is one line in COMMANDS.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bpffsEntries, BpfIds, gone, heldBpf, normalized, pinsOf } from '../support/bpf-objects';
import { churn, Churner } from '../support/churn';
import { captured } from '../support/cli';
import { heldAtFifo, readFifo } from '../support/fifo';
import { CLI } from '../support/paths';
import { close, listen } from '../support/sockets';
import { waitFor } from '../support/wait';

interface CommandCase {
  name: string;
  /** The command line, given the port the test's connections go to. */
  args: (port: number) => string[];
  /** Output (or screen) that shows the command is tracing the test's traffic; absent for one-shot commands. */
  tracing?: (port: number) => RegExp;
  /** Runs full-screen in a terminal (tmux), whose state is checked afterwards. */
  terminal?: boolean;
}

const COMMANDS: CommandCase[] = [
  { name: 'stream', args: (p) => ['--port', String(p)], tracing: (p) => new RegExp(`127\\.0\\.0\\.1:${p} .*queued`) },
  { name: 'flows', args: () => ['flows', '-a'] },
  { name: 'states', args: (p) => ['states', '-i', '0.2', `sport = :${p} or dport = :${p}`], tracing: () => /^ +1 LISTEN$/m },
  { name: 'top', args: () => ['top', '-i', '0.3'], tracing: () => /nt-churner/, terminal: true },
  { name: 'serve', args: () => ['serve', '--listen', '127.0.0.1:0'] },
  { name: 'steering', args: (p) => ['steering', '-i', '0.3', '--json', `sport = :${p} or dport = :${p}`], tracing: () => /"type":"report"/ },
  { name: 'routes', args: () => ['routes'] },
];

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGKILL'] as const;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-signals-'));
const tmuxSocket = path.join(dir, 'tmux');
const tmuxConf = path.join(dir, 'tmux.conf');
fs.writeFileSync(tmuxConf, 'set -g remain-on-exit on\nset -g status off\n');
const children: ChildProcess[] = [];
let churner: Churner | undefined;

after(async () => {
  try {
    execFileSync('tmux', ['-S', tmuxSocket, 'kill-server'], { stdio: 'ignore' });
  } catch {
    // no session was started
  }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await churner?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', tmuxSocket, '-f', tmuxConf, ...args], { encoding: 'utf8' });
const pane = (session: string, format: string): string => tmux('display-message', '-p', '-t', session, format).trim();
const history = (session: string): string => tmux('capture-pane', '-p', '-S', '-', '-t', session);

interface Running {
  pid: number;
  /** stdout so far, or the terminal's screen. */
  output(): string;
  /** Resolves with the exit code, or 128 + the signal number. */
  exited: Promise<number>;
  stderr(): string;
}

function run(c: CommandCase, port: number, fifo: string, session: string): Running {
  const env = { ...process.env, NETTRACE_KERNEL_IDS: fifo };
  if (c.terminal) {
    const quoted = c.args(port).map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // records the exit code and the terminal's modes afterwards, then waits so the pane can be inspected alive
    const command = `NETTRACE_KERNEL_IDS='${fifo}' ${process.execPath} ${CLI} ${quoted} 2>${fifo}.err; echo EXIT=$?; stty -a; read _`;
    tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', command);
    let pid = 0;
    const shell = pane(session, '#{pane_pid}');
    const kids = () => fs.readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim();
    const found = waitFor(() => (pid = Number(kids().split(/\s+/)[0]) || 0) > 0, 10000, 'the command under tmux');
    const exited = found.then(() =>
      waitFor(() => /^EXIT=\d+$/m.test(history(session)) && /echoke/.test(history(session)), 20000, `${c.name} to exit`).then(
        () => Number(history(session).match(/^EXIT=(\d+)$/m)![1]),
      ),
    );
    const r: Running = {
      get pid() {
        return pid;
      },
      output: () => history(session),
      exited,
      stderr: () => fs.readFileSync(`${fifo}.err`, 'utf8'),
    };
    return Object.assign(r, { ready: found });
  }
  const child = spawn(process.execPath, [CLI, ...c.args(port)], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  const { out, err } = captured(child);
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? 128 + os.constants.signals[signal as NodeJS.Signals]) as number);
  return { pid: child.pid!, output: out, exited, stderr: err };
}

const server = listen('127.0.0.1', 10, 10);
after(async () => close(await server));

for (const c of COMMANDS) {
  for (const signal of SIGNALS) {
    test(`${c.name}: ${signal} while tracing leaves no BPF program, link or map, and pins nothing`, async () => {
      const port = (await server).port;
      churner ??= await churn('127.0.0.1', port, 50);
      const fifo = path.join(dir, `${c.name}-${signal}`);
      execFileSync('mkfifo', [fifo]);
      const session = `${c.name}-${signal}`;
      const cmd = run(c, port, fifo, session);
      await (cmd as Running & { ready?: Promise<void> }).ready;
      await waitFor(() => heldAtFifo(cmd.pid), 30000, `${c.name} to attach and reach its FIFO`);

      const held = heldBpf(cmd.pid);
      assert.ok(held.programs.length >= 2 && held.links.length >= 2 && held.maps.length >= 2, JSON.stringify(held));
      assert.deepEqual(pinsOf(held), [], 'nothing of it is pinned while it runs');
      let reported: BpfIds | undefined;
      if (c.tracing) {
        reported = JSON.parse(await readFifo(fifo)) as BpfIds;
        await waitFor(() => c.tracing!(port).test(cmd.output()), 20000, `${c.name} to show the test's connections`).catch((e) =>
          assert.fail(`${e.message}; output:\n${cmd.output()}\nstderr: ${cmd.stderr()}`),
        );
        process.kill(cmd.pid, signal);
      } else {
        process.kill(cmd.pid, signal);
        const line = await readFifo(fifo, signal === 'SIGKILL' ? 500 : 10000);
        if (line) reported = JSON.parse(line) as BpfIds;
      }
      if (reported) assert.deepEqual(normalized(reported), held, 'kernelIds names exactly what the process holds');

      const code = await cmd.exited;
      assert.equal(code, signal === 'SIGKILL' ? 137 : 0, `exit code; stderr: ${cmd.stderr()}`);
      assert.deepEqual(await gone(held), { programs: [], links: [], maps: [] }, 'nothing is left in the kernel');
      assert.deepEqual(pinsOf(held), []);
      assert.ok(!bpffsEntries().some((p) => /nettrace|events|socks/.test(path.basename(p))), 'no nettrace pin under /sys/fs/bpf');

      if (c.name === 'stream' && signal !== 'SIGKILL') assert.match(cmd.stderr(), /^nettrace: \d+ events .*, \d+ dropped\n$/m);
      if (c.terminal) {
        // SIGKILL gives a program no chance to restore anything: there only the kernel's side can be asserted
        if (signal !== 'SIGKILL') {
          const text = history(session);
          assert.ok(!text.includes('nettrace top'), `the alternate screen was left:\n${text}`);
          assert.match(text, /(^|\s)icanon(\s|$)/m, 'canonical input back on');
          assert.match(text, /(^|\s)echo(\s|$)/m, 'echo back on');
          assert.deepEqual(pane(session, '#{alternate_on} #{cursor_flag}'), '0 1', 'main screen, cursor shown');
        }
        // the session stays until after(): killing the last one would end the tmux server under the next test
      }
    });
  }
}
