/** Names iproute2 gives the kernel's route numbers, and a route's prefix written as `ip route` writes it. */
import { NativeRoute } from '../native';

const TABLES: Record<number, string> = { 253: 'default', 254: 'main', 255: 'local' };
const PROTOCOLS: Record<number, string> = {
  0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra', 10: 'mrt', 11: 'zebra', 12: 'bird',
  13: 'dnrouted', 14: 'xorp', 15: 'ntk', 16: 'dhcp', 17: 'mrouted', 18: 'keepalived', 42: 'babel', 99: 'openr', 186: 'bgp',
  187: 'isis', 188: 'ospf', 189: 'rip', 192: 'eigrp',
};
const SCOPES: Record<number, string> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };
const TYPES: Record<number, string> = {
  0: 'none', 1: 'unicast', 2: 'local', 3: 'broadcast', 4: 'anycast', 5: 'multicast', 6: 'blackhole', 7: 'unreachable',
  8: 'prohibit', 9: 'throw', 10: 'nat', 11: 'xresolve',
};

const named = (names: Record<number, string>, n: number): string => names[n] ?? String(n);
export const tableName = (n: number): string => named(TABLES, n);
export const protocolName = (n: number): string => named(PROTOCOLS, n);
export const scopeName = (n: number): string => named(SCOPES, n);
export const typeName = (n: number): string => named(TYPES, n);

/** "default", "10.0.0.0/24", or a host route's bare address, as `ip route` prints the destination. */
export function prefixText(r: Pick<NativeRoute, 'family' | 'dst' | 'dstLen'>): string {
  if (r.dstLen === 0) return 'default';
  return r.dstLen === (r.family === 6 ? 128 : 32) ? r.dst : `${r.dst}/${r.dstLen}`;
}

/**
 * Which FIB entry: the same for a look-up's `matched` answer and its row in the dump. The kernel
 * keeps IPv4's local and main tables merged until policy rules exist, and then names either as main.
 */
export function routeKey(r: NativeRoute): string {
  const table = r.family === 4 && r.table === 255 ? 254 : r.table;
  return `${r.family}|${r.dst}/${r.dstLen}|${table}|${r.metric ?? 0}|${r.type}`;
}
