/**
 * `nettrace top`: network use per process, per remote host and per connection,
 * live and full-screen like bandwhich; one plain snapshot per interval when
 * stdout is not a terminal (or with --json).
 */
import { start, stopRequested } from '../../lifecycle';
import { COMMON_HELP, flowTraceOptions, parseCommand, stdoutOnly } from '../../options';
import { TOP_OPTIONS, TopOptions, topOptions } from '../../view-options';
import { runScreen } from './live';
import { runReports } from './plain-reports';
import { TopIo, TopSession, TopSource } from './session';

export type { TopIo, TopSession } from './session';

export const TOP_USAGE = `Usage: nettrace top [options] [FILTER]

Network use per process, per remote host and per connection, live and
full-screen like bandwhich, sorted by throughput. Listening sockets are left
out; closed connections stay dimmed for a few seconds. When stdout is not a
terminal, or with --json, prints one snapshot per interval instead (with
--format protobuf, one Snapshot frame of the matching flows and their rollups).

Keys: q or Ctrl-C quit, tab or 1/2/3 switch pane, s sort (rate, bytes, name),
/ filter in the FILTER grammar (Enter applies, Esc cancels), p pause.

Options:
  -i, --interval SEC  seconds between refreshes (default 1)
  -n, --numeric       remote hosts as addresses only: no DNS names (which come from the
                      lookups each process made while nettrace ran, not reverse DNS)
  -c, --count N       stop after N refreshes
  -d, --duration SEC  stop after SEC seconds
${COMMON_HELP}`;

const processIo = (): TopIo => ({ output: process.stdout, input: process.stdin, errors: process.stderr });

/** Starts the view; `done(code)` is called once, after the terminal is given back. */
export function topCommand(o: TopOptions, tracer: TopSource, done: (code: number) => void, io: TopIo = processIo()): TopSession {
  return io.output.isTTY && o.format === 'text' ? runScreen(o, tracer, done, io) : runReports(o, tracer, done, io);
}

/** `nettrace top [options] [FILTER]`: the view until q, --count, --duration or a signal. */
export function runTop(argv: string[]): void {
  const { common, values } = parseCommand(argv, TOP_OPTIONS);
  if (common.help) return void process.stdout.write(TOP_USAGE + '\n');
  stdoutOnly('top', common);
  const o = topOptions(common, values);
  const stop = stopRequested(common);
  // remote hosts by the names their processes looked up (the dns hook), unless -n asks for addresses only
  const names = values.numeric ? [] : (['dns'] as const);
  const tracer = start({ ...flowTraceOptions(common), events: [...flowTraceOptions(common).events!, ...names] });
  const view = topCommand(o, tracer, (code) => void tracer.stop().then(() => process.exit(code)));
  void stop.then(() => view.quit(0));
}
