/**
 * Addresses as ss takes them after src/dst: `10.0.0.0/8`, `193.233.7/24`,
 * `127.0.0.1:8080`, `[::1]`, `[2001:db8::]/32:443`, `*:22`, `:443`. IPv6
 * needs brackets to carry a port; without them every colon is the address's.
 */
import { Prefix } from './ast';
import { Fail, parsePort, PORT_EXPECTED } from './port';

export const ADDRESS_EXPECTED = 'an address like 10.0.0.0/8 or [::1]:443';

export interface Endpoint {
  /** null: any address. */
  readonly prefix: Prefix | null;
  /** null: any port. */
  readonly port: number | null;
}

function parseV4(text: string, short: boolean): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length > 4 || (!short && parts.length !== 4)) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < parts.length; i++) {
    if (!/^\d{1,3}$/.test(parts[i]) || Number(parts[i]) > 255) return null;
    out[i] = Number(parts[i]);
  }
  return out;
}

/** 16-bit groups; a dotted quad may stand for the last two. */
function groups(parts: string[], quadLast: boolean): number[] | null {
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (/^[0-9a-f]{1,4}$/i.test(p)) {
      out.push(parseInt(p, 16));
      continue;
    }
    const quad = quadLast && i === parts.length - 1 ? parseV4(p, false) : null;
    if (!quad) return null;
    out.push((quad[0] << 8) | quad[1], (quad[2] << 8) | quad[3]);
  }
  return out;
}

function parseV6(text: string): Uint8Array | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const split = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groups(split(halves[0]), halves.length === 1);
  const tail = halves.length === 2 ? groups(split(halves[1]), true) : [];
  if (!head || !tail) return null;
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return null;
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Zeroes host bits and turns a prefix inside ::ffff:0:0/96 into the IPv4 prefix it covers. */
export function makePrefix(family: 4 | 6, bytes: Uint8Array, bits: number): Prefix {
  if (family === 6 && bits >= 96 && isV4Mapped(bytes)) return makePrefix(4, bytes.slice(12), bits - 96);
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.min(8, Math.max(0, bits - 8 * i));
    out[i] &= (0xff00 >> keep) & 0xff;
  }
  return { family, bytes: out, bits };
}

/** A whole address as nettrace prints it; v4-mapped IPv6 comes back as IPv4. */
export function parseIp(text: string): Prefix | null {
  const v4 = parseV4(text, false);
  if (v4) return makePrefix(4, v4, 32);
  const v6 = parseV6(text);
  return v6 ? makePrefix(6, v6, 128) : null;
}

interface Piece {
  readonly text: string;
  /** Where the piece starts in the token, for error positions. */
  readonly at: number;
}

function parseHost(host: Piece, len: Piece | null, fail: Fail): Prefix {
  const v6 = host.text.includes(':');
  const bytes = v6 ? parseV6(host.text) : parseV4(host.text, len !== null);
  if (!bytes) fail(host.at, ADDRESS_EXPECTED, host.text);
  const max = v6 ? 128 : 32;
  if (len === null) return makePrefix(v6 ? 6 : 4, bytes, max);
  if (!/^\d{1,3}$/.test(len.text) || Number(len.text) > max) fail(len.at, `a prefix length from 0 to ${max}`, len.text);
  return makePrefix(v6 ? 6 : 4, bytes, Number(len.text));
}

/** Splits `host/bits` found at `at`. */
function splitLength(text: string, at: number): [Piece, Piece | null] {
  const slash = text.indexOf('/');
  if (slash < 0) return [{ text, at }, null];
  return [
    { text: text.slice(0, slash), at },
    { text: text.slice(slash + 1), at: at + slash + 1 },
  ];
}

export function parseEndpoint(text: string, fail: Fail): Endpoint {
  let host: Piece | null = null;
  let len: Piece | null = null;
  let rest: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 2) fail(0, ADDRESS_EXPECTED, text);
    [host, len] = splitLength(text.slice(1, close), 1);
    rest = text.slice(close + 1);
    // `[2001:db8::]/32` puts the length outside the brackets
    const outside = /^\/[^:]*/.exec(rest);
    if (outside && len === null) {
      len = { text: outside[0].slice(1), at: close + 2 };
      rest = rest.slice(outside[0].length);
    }
  } else if (text.startsWith('*')) {
    rest = text.slice(1);
  } else {
    const colons = text.split(':').length - 1;
    const cut = colons === 1 ? text.indexOf(':') : text.length;
    if (cut > 0) [host, len] = splitLength(text.slice(0, cut), 0);
    else if (text.length <= 1) fail(0, ADDRESS_EXPECTED, text);
    rest = text.slice(cut);
  }
  const restAt = text.length - rest.length;
  if (rest !== '' && !rest.startsWith(':')) fail(restAt, PORT_EXPECTED, rest);
  const prefix = host === null ? null : parseHost(host, len, fail);
  const port = rest === '' || rest === ':*' ? null : parsePort(rest, restAt, fail);
  return { prefix, port };
}

/** Whether the 4 or 16 address bytes at `buf[at]` lie in `prefix`; the caller checks the family. */
export function inPrefix(buf: Uint8Array, at: number, prefix: Prefix): boolean {
  const whole = prefix.bits >>> 3;
  const p = prefix.bytes;
  for (let i = 0; i < whole; i++) if (buf[at + i] !== p[i]) return false;
  const rest = prefix.bits & 7;
  if (rest === 0) return true;
  return ((buf[at + whole] ^ p[whole]) & ((0xff00 >> rest) & 0xff)) === 0;
}
