/** Port values as ss takes them: `:8080`, `8080`, or a service name like `:https`. */

// ss asks getservbyname; a fixed table keeps a filter meaning the same on every machine.
const SERVICES = new Map<string, number>([
  ['ftp', 21],
  ['ssh', 22],
  ['telnet', 23],
  ['smtp', 25],
  ['domain', 53],
  ['http', 80],
  ['pop3', 110],
  ['imap', 143],
  ['https', 443],
  ['submission', 587],
  ['imaps', 993],
  ['pop3s', 995],
  ['mysql', 3306],
  ['postgresql', 5432],
]);

export const PORT_EXPECTED = 'a port like :8080';
export const PORT_RANGE_EXPECTED = 'a port from 0 to 65535';

/** Reports a bad piece of a token: its offset in the token, what would fit, what was there. */
export type Fail = (at: number, expected: string, found: string) => never;

/** `text` may start with the colon; `at` is where `text` starts in the token. */
export function parsePort(text: string, at: number, fail: Fail): number {
  const bare = text.startsWith(':') ? text.slice(1) : text;
  const from = at + text.length - bare.length;
  if (/^\d+$/.test(bare)) {
    const n = Number(bare);
    if (n > 65535) fail(from, PORT_RANGE_EXPECTED, bare);
    return n;
  }
  const known = SERVICES.get(bare);
  if (known === undefined) fail(at, PORT_EXPECTED, text);
  return known;
}
