/**
 * The whole `nettrace top` screen as lines of styled text: a pure function of
 * what is shown and the terminal's size, so it can be tested at any size
 * without a terminal. Every line is exactly `width` characters of printable
 * ASCII and there are exactly `height` lines.
 */
import { printable } from '../../render';
import { fit, headerLine, placeColumns, rowLine } from './columns';
import { TopModel } from './view-model';
import { Pane, PANE_TITLES, paneData, PANES, paneTitleOf, rate } from './panes';
import { TopUi } from './ui';

export type Style = 'plain' | 'bar' | 'title' | 'focus' | 'head' | 'dim' | 'error';
export interface Segment {
  text: string;
  style: Style;
}
export type ScreenLine = Segment[];

export interface TopScreen {
  model: TopModel;
  ui: TopUi;
  stats: { drops: number; missed: number };
}

export function lineText(line: ScreenLine): string {
  return line.map((s) => s.text).join('');
}

/** Cut or pad to exactly `width`; padding takes `fill`'s style so bars span the line. */
function finish(segments: Segment[], width: number, fill: Style = 'plain'): ScreenLine {
  const out: ScreenLine = [];
  let left = width;
  for (const s of segments) {
    if (left <= 0) break;
    const text = s.text.slice(0, left);
    out.push({ text, style: s.style });
    left -= text.length;
  }
  if (left > 0) out.push({ text: ' '.repeat(left), style: fill });
  return out;
}

const blank = (width: number): ScreenLine => finish([], width);

function headerBar(s: TopScreen, width: number): ScreenLine {
  const t = s.model.totals;
  const parts = [
    'nettrace top',
    `up ${rate(t.up)}`,
    `down ${rate(t.down)}`,
    `${t.flows} flows`,
    `drops ${s.stats.drops}`,
    `missed ${s.stats.missed}`,
    `sort: ${s.ui.sort}`,
    ...(s.ui.paused ? ['PAUSED'] : []),
    ...(s.ui.filter ? [`filter: ${s.ui.filter}`] : []),
  ];
  return finish([{ text: fit(' ' + parts.join('  '), width), style: 'bar' }], width, 'bar');
}

const HELP = 'q quit  tab/1-3 pane  s sort  c group  / filter  p pause';

function statusLine(ui: TopUi, width: number): ScreenLine {
  if (ui.editing !== null) {
    // the end of the text is where typing happens, so a long filter scrolls left
    const room = Math.max(0, width - 2);
    const shown = printable(ui.editing);
    const tail = shown.length > room ? shown.slice(shown.length - room) : shown;
    return finish([{ text: '/' + tail, style: 'plain' }, { text: ' ', style: 'focus' }], width);
  }
  if (ui.notice !== null) return finish([{ text: fit(ui.notice, width), style: 'error' }], width);
  return finish([{ text: fit(HELP, width), style: 'dim' }], width);
}

/** One pane: its title, column headings, and as many rows as fit, with a count of those that do not. */
function paneLines(s: TopScreen, pane: Pane, width: number, height: number, title: ScreenLine): ScreenLine[] {
  if (height <= 0) return [];
  const data = paneData(s.model, pane);
  const lines: ScreenLine[] = [title];
  const room = height - 2;
  const overflow = data.rows.length > room;
  // one line given to "+N more" only when a row is still shown beside it
  const visible = data.rows.slice(0, Math.max(0, overflow && room >= 2 ? room - 1 : room));
  const placed = placeColumns(data.columns, visible, width);
  if (height >= 2) lines.push(finish([{ text: headerLine(placed, width), style: 'head' }], width, 'head'));
  for (const row of visible) lines.push(finish([{ text: rowLine(row, placed, width), style: data.closed(row) ? 'dim' : 'plain' }], width));
  if (overflow && room >= 2) lines.push(finish([{ text: fit(` +${data.rows.length - visible.length} more`, width), style: 'dim' }], width));
  if (room > 0 && data.rows.length === 0) lines.push(finish([{ text: fit(' (none)', width), style: 'dim' }], width));
  while (lines.length < height) lines.push(blank(width));
  return lines;
}

function paneTitle(s: TopScreen, pane: Pane, width: number): ScreenLine {
  const count = paneData(s.model, pane).rows.length;
  const style: Style = s.ui.focus === pane ? 'focus' : 'title';
  return finish([{ text: fit(` ${paneTitleOf(s.model, pane)} (${count})`, width), style }], width, style);
}

const SHORT_TITLES: Record<Pane, string> = { processes: 'Procs', hosts: 'Hosts', connections: 'Conns' };

/** Small screens show one pane at a time, chosen like tabs; narrow ones get short tab names. */
function tabBar(s: TopScreen, width: number): ScreenLine {
  const tabs = (titles: Record<Pane, string>): Segment[] =>
    PANES.map((p, i) => ({
      text: ` ${i + 1} ${titles[p]} (${paneData(s.model, p).rows.length}) `,
      style: s.ui.focus === p ? 'focus' : 'title',
    }));
  const full = tabs({ ...PANE_TITLES, processes: paneTitleOf(s.model, 'processes') });
  return finish(lineText(full).length <= width ? full : tabs(SHORT_TITLES), width, 'title');
}

function besideEachOther(left: ScreenLine[], right: ScreenLine[]): ScreenLine[] {
  return left.map((l, i) => [...l, { text: '|', style: 'plain' }, ...right[i]]);
}

/** Wide enough for processes and hosts side by side above the connections. */
const SIDE_BY_SIDE_WIDTH = 100;
/** Tall enough for every pane to show a title, its headings and a row. */
const ALL_PANES_HEIGHT = 12;

/** Lines a pane can use: its title, its headings, and its rows (or the line saying there are none). */
function wanted(s: TopScreen, pane: Pane): number {
  return 2 + Math.max(1, paneData(s.model, pane).rows.length);
}

/**
 * Splits `total` lines between parts: first in proportion to their weights
 * (the focused pane weighs double), capped at what each wants; then what a
 * part does not need goes to the others, the heavier first; any left over
 * goes to the last, so blank space gathers at the bottom of the screen.
 */
export function share(total: number, parts: { want: number; weight: number }[]): number[] {
  const weights = parts.reduce((n, p) => n + p.weight, 0);
  const heights = parts.map((p) => Math.min(p.want, Math.floor((total * p.weight) / weights)));
  let left = total - heights.reduce((a, b) => a + b, 0);
  const byWeight = parts.map((p, i) => ({ ...p, i })).sort((a, b) => b.weight - a.weight || a.i - b.i);
  for (const p of byWeight) {
    const more = Math.min(left, p.want - heights[p.i]);
    heights[p.i] += more;
    left -= more;
  }
  heights[parts.length - 1] += left;
  return heights;
}

function body(s: TopScreen, width: number, height: number): ScreenLine[] {
  const { focus } = s.ui;
  if (height < ALL_PANES_HEIGHT) return paneLines(s, focus, width, height, tabBar(s, width));
  const pane = (p: Pane, w: number, h: number) => paneLines(s, p, w, h, paneTitle(s, p, w));
  const weight = (...panes: Pane[]) => (panes.includes(focus) ? 2 : 1);
  if (width >= SIDE_BY_SIDE_WIDTH) {
    const [top, bottom] = share(height, [
      { want: Math.max(wanted(s, 'processes'), wanted(s, 'hosts')), weight: weight('processes', 'hosts') },
      { want: wanted(s, 'connections'), weight: weight('connections') },
    ]);
    const leftWidth = Math.floor((width - 1) / 2);
    const rightWidth = width - 1 - leftWidth;
    return [...besideEachOther(pane('processes', leftWidth, top), pane('hosts', rightWidth, top)), ...pane('connections', width, bottom)];
  }
  const heights = share(
    height,
    PANES.map((p) => ({ want: wanted(s, p), weight: weight(p) })),
  );
  return PANES.flatMap((p, i) => pane(p, width, heights[i]));
}

export function renderScreen(s: TopScreen, width: number, height: number): ScreenLine[] {
  const w = Math.max(0, Math.floor(width));
  const h = Math.max(0, Math.floor(height));
  if (h === 0) return [];
  const lines = [headerBar(s, w)];
  if (h >= 3) lines.push(...body(s, w, h - 2));
  if (h >= 2) lines.push(statusLine(s.ui, w));
  return lines;
}
