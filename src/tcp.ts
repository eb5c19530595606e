import { TCP_STATES } from './layout';

/** TCP state names by the kernel's numbers (generated into layout.ts from bpf/vmlinux.h). */
export { TCP_STATES };
export type TcpState = (typeof TCP_STATES)[number];

export function stateName(n: number): TcpState {
  return TCP_STATES[n] ?? 'UNKNOWN';
}

const ERRNO: Record<number, string> = {
  1: 'EPERM',
  4: 'EINTR',
  11: 'EAGAIN',
  13: 'EACCES',
  22: 'EINVAL',
  32: 'EPIPE',
  98: 'EADDRINUSE',
  99: 'EADDRNOTAVAIL',
  100: 'ENETDOWN',
  101: 'ENETUNREACH',
  103: 'ECONNABORTED',
  104: 'ECONNRESET',
  110: 'ETIMEDOUT',
  111: 'ECONNREFUSED',
  112: 'EHOSTDOWN',
  113: 'EHOSTUNREACH',
};

/** A connect's outcome: ok, refused, timeout, or the errno's name. */
export function connectResult(err: number): string {
  if (err === 0) return 'ok';
  if (err === 111) return 'refused';
  if (err === 110) return 'timeout';
  return ERRNO[err] ?? `errno ${err}`;
}

/** The errno behind a connect result: the inverse of connectResult. */
export function connectErrno(result: string): number {
  if (result === 'ok') return 0;
  if (result === 'refused') return 111;
  if (result === 'timeout') return 110;
  const named = Object.entries(ERRNO).find(([, name]) => name === result);
  if (named) return Number(named[0]);
  const m = /^errno (-?\d+)$/.exec(result);
  if (m) return Number(m[1]);
  throw new Error(`'${result}' is not a connect result`);
}
