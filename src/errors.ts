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
