/** Raw terminal input to keys. In raw mode Ctrl-C is a byte, not a signal, and arrives here. */

export type Key =
  | { type: 'char'; ch: string }
  | { type: 'tab' }
  | { type: 'backtab' }
  | { type: 'enter' }
  | { type: 'escape' }
  | { type: 'backspace' }
  | { type: 'clearline' }
  | { type: 'interrupt' }
  | { type: 'other' };

/**
 * Every key in one chunk of input. A lone ESC is the Escape key; ESC followed
 * by '[' or 'O' starts a sequence (arrows, Shift-Tab), read to its final byte.
 */
export function decodeKeys(data: string): Key[] {
  const keys: Key[] = [];
  const chars = [...data];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '\x1b') {
      const next = chars[i + 1];
      if (next !== '[' && next !== 'O') {
        keys.push({ type: 'escape' });
        continue;
      }
      let j = i + 2;
      // CSI parameters and intermediates run until a final byte in @..~
      while (next === '[' && j < chars.length && !/[\x40-\x7e]/.test(chars[j])) j++;
      const final = chars[j];
      keys.push(next === '[' && final === 'Z' ? { type: 'backtab' } : { type: 'other' });
      i = j;
      continue;
    }
    switch (ch) {
      case '\x03':
        keys.push({ type: 'interrupt' });
        break;
      case '\t':
        keys.push({ type: 'tab' });
        break;
      case '\r':
      case '\n':
        keys.push({ type: 'enter' });
        break;
      case '\x7f':
      case '\b':
        keys.push({ type: 'backspace' });
        break;
      case '\x15':
        keys.push({ type: 'clearline' });
        break;
      default:
        keys.push(ch < ' ' ? { type: 'other' } : { type: 'char', ch });
    }
  }
  return keys;
}
