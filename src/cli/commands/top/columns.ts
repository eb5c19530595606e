/**
 * Table columns that fit any width: the least important columns leave first,
 * then spare room goes to the most important ones, and every cell is escaped
 * and cut to its width so no text can reach past its box.
 */
import { printable } from '../../render';

export interface Column<T> {
  title: string;
  /** Narrowest useful width. */
  min: number;
  /** Widest it grows, however long its cells. */
  max: number;
  /** Higher stays longer as the terminal narrows, and gets spare room first. */
  priority: number;
  align: 'left' | 'right';
  /** Where a long cell loses text: at its end, or in its middle so an endpoint keeps its port. */
  cut?: 'end' | 'middle';
  cell: (row: T) => string;
}

export interface Placed<T> {
  column: Column<T>;
  width: number;
}

const GAP = 1;

/** Escaped, then cut to `width` with a visible mark where text was lost. */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left', cut: 'end' | 'middle' = 'end'): string {
  if (width <= 0) return '';
  const s = printable(text);
  if (s.length > width) {
    if (width === 1) return '~';
    if (cut === 'end') return s.slice(0, width - 1) + '~';
    const tail = Math.ceil((width - 1) / 2);
    return s.slice(0, width - 1 - tail) + '~' + s.slice(s.length - tail);
  }
  return align === 'right' ? s.padStart(width) : s.padEnd(width);
}

/** The columns kept at `width`, in their original order, with the width each gets. */
export function placeColumns<T>(columns: Column<T>[], rows: T[], width: number): Placed<T>[] {
  const byImportance = [...columns].sort((a, b) => b.priority - a.priority);
  const kept: Column<T>[] = [];
  let used = 0;
  for (const c of byImportance) {
    const need = c.min + (kept.length ? GAP : 0);
    if (used + need > width) continue;
    kept.push(c);
    used += need;
  }
  if (kept.length === 0 && byImportance.length > 0) {
    // even the most important column does not fit at its minimum: it takes what there is
    return width > 0 ? [{ column: byImportance[0], width }] : [];
  }
  // spare room goes to each column in proportion to what it lacks, so one long cell cannot starve the rest
  const lack = new Map(kept.map((c) => [c, Math.max(0, naturalWidth(c, rows) - c.min)]));
  const totalLack = [...lack.values()].reduce((a, b) => a + b, 0);
  const spare = width - used;
  const widths = new Map(kept.map((c) => [c, c.min + (totalLack <= spare ? lack.get(c)! : Math.floor((spare * lack.get(c)!) / totalLack))]));
  let left = width - used - [...widths].reduce((n, [c, w]) => n + w - c.min, 0);
  for (const c of kept) {
    const more = Math.min(left, c.min + lack.get(c)! - widths.get(c)!);
    widths.set(c, widths.get(c)! + more);
    left -= more;
  }
  return columns.filter((c) => widths.has(c)).map((c) => ({ column: c, width: widths.get(c)! }));
}

function naturalWidth<T>(c: Column<T>, rows: T[]): number {
  return Math.min(c.max, Math.max(c.title.length, ...rows.map((r) => printable(c.cell(r)).length)));
}

/** One line of a table, exactly `width` wide. */
export function tableLine(cells: string[], placed: Placed<unknown>[], width: number): string {
  const line = placed.map((p, i) => fit(cells[i], p.width, p.column.align, p.column.cut)).join(' '.repeat(GAP));
  return fit(line, width);
}

export function headerLine<T>(placed: Placed<T>[], width: number): string {
  return tableLine(
    placed.map((p) => p.column.title),
    placed as Placed<unknown>[],
    width,
  );
}

export function rowLine<T>(row: T, placed: Placed<T>[], width: number): string {
  return tableLine(
    placed.map((p) => p.column.cell(row)),
    placed as Placed<unknown>[],
    width,
  );
}
