/** What the person at `nettrace top` has chosen, and how each key changes it. No I/O: the screen follows from it. */
import { compile } from '../../../filter/compile';
import { FilterSyntaxError } from '../../../filter/error';
import { parseFilter } from '../../../filter/parse';
import { subjectOf } from '../../../filter/subject';
import { Flow } from '../../../flows/flow';
import { TCP_STATES } from '../../../tcp';
import { Key } from './input';
import { Grouping, SORT_KEYS, SortKey } from './view-model';
import { Pane, PANES } from './panes';

export interface TopUi {
  focus: Pane;
  sort: SortKey;
  paused: boolean;
  /** The first pane's grouping, toggled by `c`. */
  grouping: Grouping;
  /** The filter typed after '/', on top of the command line's; '' for none. */
  filter: string;
  filterMatch: ((f: Flow) => boolean) | null;
  /** Text being typed after '/'; null when not typing. */
  editing: string | null;
  /** What '/' starts from: the text last typed, applied or not, so a mistake can be fixed rather than retyped. */
  lastTyped: string;
  /** Shown in the status line until the next key, e.g. a filter's syntax error. */
  notice: string | null;
}

export function initialUi(): TopUi {
  return { focus: 'processes', sort: 'rate', paused: false, grouping: 'process', filter: '', filterMatch: null, editing: null, lastTyped: '', notice: null };
}

/** Longest filter text kept: plenty for ss grammar, and bounded whatever is pasted. */
const MAX_FILTER = 1000;

/** A typed filter as a predicate over flows, or the syntax error to show. */
export function typedFilter(text: string): { match: (f: Flow) => boolean } | { error: string } {
  try {
    const predicate = compile(parseFilter(text));
    return {
      match: (f) => {
        try {
          return predicate(subjectOf({ ...f, state: TCP_STATES.indexOf(f.state) }));
        } catch {
          return false; // addresses it cannot compare (mixed families) match nothing rather than end the view
        }
      },
    };
  } catch (e) {
    if (e instanceof FilterSyntaxError) return { error: e.message };
    return { error: `filter: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function cycle<T>(list: readonly T[], current: T, step: number): T {
  return list[(list.indexOf(current) + step + list.length) % list.length];
}

function whileTyping(ui: TopUi, editing: string, key: Key): TopUi {
  switch (key.type) {
    case 'char':
      return { ...ui, editing: (editing + key.ch).slice(0, MAX_FILTER) };
    case 'backspace':
      return { ...ui, editing: [...editing].slice(0, -1).join('') };
    case 'clearline':
      return { ...ui, editing: '' };
    case 'escape':
      return { ...ui, editing: null };
    case 'enter': {
      if (editing.trim() === '') return { ...ui, editing: null, lastTyped: '', filter: '', filterMatch: null };
      const typed = typedFilter(editing);
      if ('error' in typed) return { ...ui, editing: null, lastTyped: editing, notice: typed.error };
      return { ...ui, editing: null, lastTyped: editing, filter: editing.trim(), filterMatch: typed.match };
    }
    default:
      return ui;
  }
}

export function applyKey(current: TopUi, key: Key): { ui: TopUi; quit: boolean } {
  if (key.type === 'interrupt') return { ui: current, quit: true };
  const ui = current.notice === null ? current : { ...current, notice: null };
  if (ui.editing !== null) return { ui: whileTyping(ui, ui.editing, key), quit: false };
  if (key.type === 'tab') return { ui: { ...ui, focus: cycle(PANES, ui.focus, 1) }, quit: false };
  if (key.type === 'backtab') return { ui: { ...ui, focus: cycle(PANES, ui.focus, -1) }, quit: false };
  if (key.type !== 'char') return { ui, quit: false };
  switch (key.ch) {
    case 'q':
      return { ui, quit: true };
    case '1':
    case '2':
    case '3':
      return { ui: { ...ui, focus: PANES[Number(key.ch) - 1] }, quit: false };
    case 's':
      return { ui: { ...ui, sort: cycle(SORT_KEYS, ui.sort, 1) }, quit: false };
    case 'p':
      return { ui: { ...ui, paused: !ui.paused }, quit: false };
    case 'c':
      return { ui: { ...ui, grouping: ui.grouping === 'process' ? 'container' : 'process' }, quit: false };
    case '/':
      return { ui: { ...ui, editing: ui.lastTyped }, quit: false };
    default:
      return { ui, quit: false };
  }
}
