/** Fuzzed DNS payloads, shared by the parser's fuzz test and the kernel path's: a valid response, and random or mutated bytes. */
import fc from 'fast-check';
import { encode } from 'dns-packet';

/** A response through a CNAME to an A record. */
export const valid = encode({
  type: 'response',
  id: 7,
  flags: 0x100,
  questions: [{ name: 'www.ntdns.test', type: 'A', class: 'IN' }],
  answers: [
    { name: 'www.ntdns.test', type: 'CNAME', ttl: 60, data: 'x.ntdns.test' },
    { name: 'x.ntdns.test', type: 'A', ttl: 60, data: '10.0.0.1' },
  ],
});

/** Random bytes, and a valid response with bytes changed, cut or appended. */
export const payloads = fc.oneof(
  fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)),
  fc
    .tuple(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { maxLength: 8 }), fc.nat(valid.length), fc.uint8Array({ maxLength: 16 }))
    .map(([flips, cut, tail]) => {
      const b = Buffer.from(valid);
      for (const [at, v] of flips) b[at] = v;
      return Buffer.concat([b.subarray(0, cut), Buffer.from(tail)]);
    }),
);
