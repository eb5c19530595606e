/** The options of the live views, `top` and `steering`: how often they report, and how many connections a report lists. */
import { ParseArgsConfig } from 'node:util';
import { CommonOptions, integer, UsageError } from './options';

export interface TopOptions extends CommonOptions {
  intervalMs: number;
  /** Connections each report lists when stdout is not a terminal: the busiest, in the sort's order. */
  rows: number;
}

/** top's own options; steering takes them and adds its threshold. */
export const TOP_OPTIONS: NonNullable<ParseArgsConfig['options']> = { interval: { type: 'string', short: 'i' }, rows: { type: 'string' }, numeric: { type: 'boolean', short: 'n' } };

/** --interval (0.1 to 3600 s, default 1) and --rows (default 100) over the common options. */
export function topOptions(common: CommonOptions, values: Record<string, unknown>): TopOptions {
  const text = values.interval === undefined ? '1' : String(values.interval);
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds < 0.1 || seconds > 3600) {
    throw new UsageError(`--interval must be a number of seconds from 0.1 to 3600, not '${text}'`);
  }
  return { ...common, intervalMs: seconds * 1000, rows: integer('--rows', values.rows, 1, 1_000_000) ?? 100 };
}
