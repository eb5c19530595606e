/**
 * ss(8) state names as bit masks over kernel state numbers. ss and the kernel
 * number states alike, so "all", "connected" and friends mean what ss means.
 */
import { TCP_STATES, TcpState } from '../tcp';

const bit = (s: TcpState): number => 1 << TCP_STATES.indexOf(s);

export const ALL_STATES = (1 << TCP_STATES.length) - 1;

// The kernel keeps half-open connections as NEW_SYN_RECV request sockets and
// ss shows them as SYN-RECV, so the name covers both.
const SYN_RECV = bit('SYN_RECV') | bit('NEW_SYN_RECV');
const CLOSE = bit('CLOSE');
const LISTEN = bit('LISTEN');
const BUCKET = SYN_RECV | bit('TIME_WAIT');

const NAMED = new Map<string, number>([
  ['established', bit('ESTABLISHED')],
  ['syn-sent', bit('SYN_SENT')],
  ['syn-recv', SYN_RECV],
  ['syn-rcv', SYN_RECV],
  ['fin-wait-1', bit('FIN_WAIT1')],
  ['fin-wait-2', bit('FIN_WAIT2')],
  ['time-wait', bit('TIME_WAIT')],
  ['closed', CLOSE],
  ['close', CLOSE],
  ['unconnected', CLOSE],
  ['close-wait', bit('CLOSE_WAIT')],
  ['last-ack', bit('LAST_ACK')],
  ['listening', LISTEN],
  ['listen', LISTEN],
  ['closing', bit('CLOSING')],
  ['bound-inactive', bit('BOUND_INACTIVE')],
  ['all', ALL_STATES],
  ['connected', ALL_STATES & ~(CLOSE | LISTEN)],
  ['synchronized', ALL_STATES & ~(CLOSE | LISTEN | bit('SYN_SENT'))],
  ['bucket', BUCKET],
  ['big', ALL_STATES & ~BUCKET],
]);

export const STATE_NAMES =
  'established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, ' +
  'all, connected, synchronized, bucket, big';

/** ss matches state names case-insensitively. */
export function stateMask(name: string): number | undefined {
  return NAMED.get(name.toLowerCase());
}

export function stateMatches(mask: number, state: number): boolean {
  // >>> only looks at the low 5 bits of the count, so larger states must not wrap around
  return state >= 0 && state < 32 && ((mask >>> state) & 1) === 1;
}
