/**
 * bpf/nettrace.h is the one definition of the record layout. Compile it, and
 * hold the Rust mirror (as the addon compiled it) and the TypeScript offsets
 * against what the C compiler says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../src/native';
import * as L from '../src/layout';
import { ROOT } from './helpers';

const HEADER = path.join(ROOT, 'bpf', 'nettrace.h');
const C_STRUCT: Record<string, string> = {
  NtHead: 'nt_head',
  NtState: 'nt_state',
  NtConnect: 'nt_connect',
  NtAccept: 'nt_accept',
  NtClose: 'nt_close',
  NtFlow: 'nt_flow',
  NtFilter: 'nt_filter',
  NtUdp: 'nt_udp',
  NtUdpFlow: 'nt_udp_flow',
  NtUdpPeer: 'nt_udp_peer',
  NtUdpPeerBytes: 'nt_udp_peer_bytes',
  NtDns: 'nt_dns',
};

type Row = { name: string; offset: number; size: number };

function cLayout(rows: Row[]): Row[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-layout-'));
  try {
    const lines = rows.map(({ name }) => {
      const [rust, ...member] = name.split('.');
      const st = `struct ${C_STRUCT[rust]}`;
      if (member.length === 0) return `printf("%s 0 %zu\\n", "${name}", sizeof(${st}));`;
      const m = member.join('.');
      return `printf("%s %zu %zu\\n", "${name}", offsetof(${st}, ${m}), sizeof(((${st} *)0)->${m}));`;
    });
    const src = `#include <stdio.h>\n#include <stddef.h>\n#include <linux/types.h>\n#include "${HEADER}"\nint main(void) {\n${lines.join('\n')}\nreturn 0; }\n`;
    fs.writeFileSync(path.join(dir, 'layout.c'), src);
    execFileSync('gcc', ['-Wall', '-Werror', '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
    return execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => {
        const [name, offset, size] = l.split(' ');
        return { name, offset: Number(offset), size: Number(size) };
      });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Member names of each struct in the header, sub-structs expanded, padding left out. */
function headerMembers(): string[] {
  const text = fs.readFileSync(HEADER, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const bodies = new Map<string, string[]>();
  for (const m of text.matchAll(/struct (nt_\w+) \{([^}]*)\};/g)) {
    const members = [...m[2].matchAll(/^\s*(struct \w+|[\w ]+?)\s+(\w+)(\[[^\]]*\])?;/gm)].map((x) => `${x[1]} ${x[2]}`);
    bodies.set(m[1], members);
  }
  const expand = (st: string, prefix: string): string[] =>
    bodies.get(st)!.flatMap((decl) => {
      const [type, name] = [decl.slice(0, decl.lastIndexOf(' ')), decl.slice(decl.lastIndexOf(' ') + 1)];
      if (name.startsWith('_pad')) return [];
      const sub = /^struct (nt_\w+)$/.exec(type);
      if (sub && sub[1] === 'nt_head') return []; // the head's rows are NtHead's
      return sub ? expand(sub[1], `${prefix}${name}.`) : [`${prefix}${name}`];
    });
  return Object.entries(C_STRUCT).flatMap(([rust, c]) => expand(c, `${rust}.`));
}

const TS: Record<string, number> = {
  'NtHead.kind': L.Head.kind,
  'NtHead.size': L.Head.size,
  'NtHead.cpu': L.Head.cpu,
  'NtHead.ts': L.Head.ts,
  ...Object.fromEntries(Object.entries(L.Head.sock).map(([k, v]) => [`NtHead.sock.${k}`, v])),
  ...Object.fromEntries(Object.entries(L.Head.owner).map(([k, v]) => [`NtHead.owner.${k}`, v])),
  NtHead: L.Head.SIZE,
  ...Object.fromEntries(Object.entries(L.State).map(([k, v]) => [k === 'SIZE' ? 'NtState' : `NtState.${k}`, v])),
  ...Object.fromEntries(Object.entries(L.Connect).map(([k, v]) => [k === 'SIZE' ? 'NtConnect' : `NtConnect.${k}`, v])),
  ...Object.fromEntries(Object.entries(L.Accept).map(([k, v]) => [k === 'SIZE' ? 'NtAccept' : `NtAccept.${k}`, v])),
  ...Object.fromEntries(Object.entries(L.Close).map(([k, v]) => [k === 'SIZE' ? 'NtClose' : `NtClose.${k}`, v])),
  ...rowsOf('NtUdp', L.Udp),
  ...rowsOf('NtFlow', L.Flow),
  ...rowsOf('NtUdpFlow', L.UdpFlow),
  ...rowsOf('NtUdpPeer', L.UdpPeer),
  ...rowsOf('NtUdpPeerBytes', L.UdpPeerBytes),
  ...rowsOf('NtDns', L.Dns),
};

/** "Struct.field" rows of a TypeScript layout, sub-structs flattened, SIZE as the struct's own row. */
function rowsOf(struct: string, layout: Record<string, number | Record<string, number>>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(layout).flatMap(([k, v]) =>
      typeof v === 'number'
        ? [[k === 'SIZE' ? struct : `${struct}.${k}`, v]]
        : Object.entries(v).map(([sub, off]) => [`${struct}.${k}.${sub}`, off]),
    ),
  );
}

test('Rust layout equals the C header', () => {
  const rust = native().recordLayout();
  assert.deepEqual(cLayout(rust), rust);
});

test('every field of the C header is in the Rust and TypeScript layouts', () => {
  const rustNames = new Set(native().recordLayout().map((r) => r.name));
  for (const member of headerMembers()) {
    assert.ok(rustNames.has(member), `${member} is missing from native/src/layout.rs`);
    // the kernel filter goes from the addon to the kernel; TypeScript never reads it
    if (!member.startsWith('NtFilter.')) assert.ok(member in TS, `${member} is missing from src/layout.ts`);
  }
});

test('TypeScript offsets and sizes equal the C header', () => {
  const c = new Map(cLayout(native().recordLayout()).map((r) => [r.name, r]));
  for (const [name, value] of Object.entries(TS)) {
    const row = c.get(name);
    assert.ok(row, `${name} in src/layout.ts is not in the header`);
    assert.equal(value, name.includes('.') ? row.offset : row.size, name);
  }
});

test('record kinds match enum nt_kind', () => {
  const text = fs.readFileSync(HEADER, 'utf8');
  const kinds = Object.fromEntries([...text.matchAll(/NT_(STATE|CONNECT|ACCEPT|CLOSE|UDP|DNS) = (\d+)/g)].map((m) => [m[1], Number(m[2])]));
  assert.deepEqual(kinds, { STATE: L.Kind.State, CONNECT: L.Kind.Connect, ACCEPT: L.Kind.Accept, CLOSE: L.Kind.Close, UDP: L.Kind.Udp, DNS: L.Kind.Dns });
  const dns = Object.fromEntries([...text.matchAll(/#define NT_DNS_(SENT|RECEIVED|MAX) (\d+)/g)].map((m) => [m[1], Number(m[2])]));
  assert.deepEqual(dns, { SENT: L.DnsDir.Sent, RECEIVED: L.DnsDir.Received, MAX: L.DNS_MAX });
  const events = Object.fromEntries([...text.matchAll(/#define NT_UDP_(OPEN|CLOSE) (\d+)/g)].map((m) => [m[1], Number(m[2])]));
  assert.deepEqual(events, { OPEN: L.UdpEvent.Open, CLOSE: L.UdpEvent.Close });
});

test('struct nt_udp keeps the offsets of nt_close that the cursor reads for both', () => {
  assert.deepEqual([L.Udp.lifetime_ns, L.Udp.tx_bytes, L.Udp.rx_bytes], [L.Close.lifetime_ns, L.Close.tx_bytes, L.Close.rx_bytes]);
});
