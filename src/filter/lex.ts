/**
 * Splits a filter into words and operators. Unlike ss, operators need no
 * spaces around them (`(sport=:80)`), since people type filters that way;
 * quotes let a process name contain spaces or operator characters.
 */
import { FilterSyntaxError } from './error';

export type TokenKind = 'word' | 'quoted' | 'op' | 'end';

export interface Token {
  readonly kind: TokenKind;
  /** The value: a quoted token's text without its quotes. */
  readonly text: string;
  /** As typed, for messages. */
  readonly raw: string;
  readonly pos: number;
}

// Longest first, so `!=` is not read as `!` then `=`.
const OPERATORS = ['&&', '||', '!=', '==', '<=', '>=', '(', ')', '!', '&', '|', '=', '<', '>'];
const WORD_END = /[\s()!=<>&|"']/;

export function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i];
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === '"' || ch === "'") {
      const end = input.indexOf(ch, i + 1);
      if (end < 0) throw new FilterSyntaxError(input.length, `a closing ${ch} for the quote at column ${i + 1}`);
      tokens.push({ kind: 'quoted', text: input.slice(i + 1, end), raw: input.slice(i, end + 1), pos: i });
      i = end + 1;
      continue;
    }
    const op = OPERATORS.find((o) => input.startsWith(o, i));
    if (op) {
      tokens.push({ kind: 'op', text: op, raw: op, pos: i });
      i += op.length;
      continue;
    }
    let j = i + 1;
    while (j < input.length && !WORD_END.test(input[j])) j++;
    const word = input.slice(i, j);
    tokens.push({ kind: 'word', text: word, raw: word, pos: i });
    i = j;
  }
  tokens.push({ kind: 'end', text: '', raw: '', pos: input.length });
  return tokens;
}
