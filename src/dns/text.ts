/** A DNS lookup in one line of text, as `nettrace dns` and the stream print it. */
import { DnsEvent } from '../events';

export function dnsSummary(e: DnsEvent): string {
  const outcome = e.timeout ? 'timeout' : e.rcode;
  const chain = e.cnames.length ? ` via ${e.cnames.join(' > ')}` : '';
  const addrs = e.addresses.length ? ` ${e.addresses.join(' ')}` : '';
  return `${e.qtype} ${e.name || '.'} ${outcome}${chain}${addrs}`;
}
