/**
 * `nettrace top`: network use per process, per remote host and per connection,
 * live and full-screen like bandwhich; one plain snapshot per interval when
 * stdout is not a terminal (or with --json).
 */
import { ParseArgsConfig } from 'node:util';
import { CommonOptions, integer, UsageError } from './options';
import { runScreen } from './top/live';
import { runReports } from './top/report';
import { TopIo, TopOptions, TopSession, TopSource } from './top/session';

export type { TopIo, TopOptions, TopSession } from './top/session';

export const TOP_OPTIONS: NonNullable<ParseArgsConfig['options']> = { interval: { type: 'string', short: 'i' }, rows: { type: 'string' }, numeric: { type: 'boolean', short: 'n' } };

export function topOptions(common: CommonOptions, values: Record<string, unknown>): TopOptions {
  const text = values.interval === undefined ? '1' : String(values.interval);
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds < 0.1 || seconds > 3600) {
    throw new UsageError(`--interval must be a number of seconds from 0.1 to 3600, not '${text}'`);
  }
  return { ...common, intervalMs: seconds * 1000, rows: integer('--rows', values.rows, 1, 1_000_000) ?? 100 };
}

const processIo = (): TopIo => ({ output: process.stdout, input: process.stdin, errors: process.stderr });

/** Starts the view; `done(code)` is called once, after the terminal is given back. */
export function topCommand(o: TopOptions, tracer: TopSource, done: (code: number) => void, io: TopIo = processIo()): TopSession {
  return io.output.isTTY && o.format === 'text' ? runScreen(o, tracer, done, io) : runReports(o, tracer, done, io);
}
