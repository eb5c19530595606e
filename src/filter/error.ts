import { escapeControls } from '../errors';

/** A filter that does not parse, pointing at the offending character. */
export class FilterSyntaxError extends Error {
  constructor(
    /** 0-based offset into the filter text; the message shows it 1-based as a column. */
    readonly position: number,
    /** What would have been accepted there, e.g. "a port like :8080". */
    readonly expected: string,
    /** The words that led up to it, e.g. "sport =". */
    readonly after: string | null = null,
    /** The text found instead; null at the end of the filter. */
    readonly found: string | null = null,
  ) {
    super(
      `filter: at column ${position + 1}: expected ${expected}` +
        (after ? ` after '${escapeControls(after)}'` : '') +
        (found !== null ? `, got '${escapeControls(found)}'` : ''),
    );
    this.name = 'FilterSyntaxError';
  }
}
