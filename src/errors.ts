/** Why nettrace could not start or run, as one sentence with a stable code. */
export type ErrorCode = 'EPERM' | 'ENOBTF' | 'ENOHOOK' | 'EVERIFIER' | 'EINVAL' | 'EKERNEL' | 'ENATIVE';

export class NettraceError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'NettraceError';
  }
}

/** The addon reports "[CODE] sentence"; anything else is a native failure as is. */
export function fromNative(e: unknown): NettraceError {
  const message = e instanceof Error ? e.message : String(e);
  const m = /^\[([A-Z]+)\] (.*)$/s.exec(message);
  if (m) return new NettraceError(m[1] as ErrorCode, m[2]);
  return new NettraceError('ENATIVE', message);
}

/**
 * Text a user or a process supplied, made safe for a one-line message: control
 * characters (newlines, ESC, C1) and lone surrogates become \xNN / \uXXXX.
 */
export function escapeControls(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (ch) => {
    const code = ch.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}
