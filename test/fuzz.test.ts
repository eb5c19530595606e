/**
 * Bad input under a property-based fuzzer: filter expressions and command
 * lines never crash or hang the parser, and every rejection is one line; a
 * sample of rejected command lines run as the real CLI exits 2 with exactly
 * that line on stderr and loads nothing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { FilterSyntaxError } from '../src/filter/error';
import { parseFilter } from '../src/filter/parse';
import { parseCommand, UsageError } from '../src/cli/options';
import { TOP_OPTIONS, topOptions } from '../src/cli/view-options';
import { SERVE_OPTIONS, serveOptions } from '../src/cli/commands/serve';
import { STEERING_OPTIONS, steeringOptions } from '../src/cli/commands/steering';
import { parseBench } from '../src/cli/commands/bench';
import { CLI } from './helpers';

const WORDS = [
  'state', 'established', 'syn-sent', 'listening', 'connected', 'all', 'src', 'dst', 'sport', 'dport', 'and', 'or',
  'not', '!', '(', ')', '=', '==', '!=', '<', '>', '<=', '>=', 'eq', 'neq', 'gt', 'lt', ':80', ':443', ':', '*',
  '10.0.0.0/8', '[::1]', '::1', '127.0.0.1', '[::ffff:1.2.3.4]:5', '1.2.3.4/33', 'pid', 'comm', 'cgroup', 'autobound',
  '"', "'", '\\', '99999999999999999999', '-1', '0', ':65536', '\u001b[2J', '\n', '\u00ff', '\ud800',
];

/** Text in the grammar's own words, and anything at all. */
const filterText = fc.oneof(
  fc.array(fc.constantFrom(...WORDS), { maxLength: 12 }).map((w) => w.join(' ')),
  fc.array(fc.constantFrom(...WORDS), { maxLength: 12 }).map((w) => w.join('')),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 60 }),
);

const OPTIONS = [
  '--json', '-p', '--pid', '--comm', '--port', '-4', '-6', '-d', '--duration', '-c', '--count', '--ring-kb', '-h', '-V',
  '-i', '--interval', '-l', '-a', '--bogus', '--', '-', '--pid=', '--port=-1', '-c0', '-d0', '--ring-kb=3',
];
const optionValue = fc.oneof(
  fc.constantFrom('0', '1', '-1', '1e3', '0x10', '65536', '4194305', '3.5', '', ' ', 'NaN', 'Infinity', '16', '1048577', 'a'.repeat(16)),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const argv = fc.array(fc.oneof(fc.constantFrom(...OPTIONS), optionValue, fc.constantFrom(...WORDS)), { maxLength: 8 });

/** Each command's own parse, as main.ts runs it before loading anything. */
const PARSERS: Record<string, (args: string[]) => void> = {
  stream: (a) => parseCommand(a),
  flows: (a) => parseCommand(a, { listening: { type: 'boolean', short: 'l' }, all: { type: 'boolean', short: 'a' } }),
  states: (a) => parseCommand(a, { interval: { type: 'string', short: 'i' } }),
  top: (a) => {
    const { common, values } = parseCommand(a, TOP_OPTIONS);
    topOptions(common, values);
  },
  serve: (a) => {
    const { common, values } = parseCommand(a, SERVE_OPTIONS);
    serveOptions(common, values);
  },
  steering: (a) => {
    const { common, values } = parseCommand(a, STEERING_OPTIONS);
    steeringOptions(common, values);
  },
  routes: (a) => parseCommand(a, { all: { type: 'boolean', short: 'a' } }),
  bench: (a) => parseBench(a),
};

/** Runs `parse`; returns the usage error's message, or undefined when the input is accepted. */
function rejection(parse: () => void): string | undefined {
  try {
    parse();
    return undefined;
  } catch (e) {
    if (!(e instanceof UsageError || e instanceof FilterSyntaxError)) throw e; // anything else is a crash
    assert.ok(e.message.length > 0 && !/[\n\r]/.test(e.message), `one line: ${JSON.stringify(e.message)}`);
    return e.message;
  }
}

test('parseFilter: any text is parsed or rejected with a one-line FilterSyntaxError', () => {
  fc.assert(
    fc.property(filterText, (text) => {
      rejection(() => parseFilter(text));
    }),
    { numRuns: 20000 },
  );
});

test("every command's option parser: any argv is accepted or rejected with a one-line UsageError", () => {
  for (const [name, parse] of Object.entries(PARSERS)) {
    fc.assert(
      fc.property(argv, filterText, (args, filter) => {
        rejection(() => parse([...args, filter]));
        rejection(() => parse(args));
      }),
      { numRuns: 5000 },
    );
    assert.ok(name);
  }
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-fuzz-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a sample of rejected command lines, run as the CLI: exit 2, exactly one line on stderr, nothing loaded', async () => {
  const ids = path.join(dir, 'ids');
  // a fixed seed: the same 40 command lines every run
  const samples = fc.sample(
    fc.tuple(fc.constantFrom(...Object.keys(PARSERS)), argv, filterText).filter(([cmd, a, f]) => {
      const args = [...a, f];
      // argv cannot carry NUL; the stream takes no command word first
      if (args.some((x) => x.includes('\0'))) return false;
      if (cmd === 'stream' && ['flows', 'states', 'top'].includes(args[0])) return false;
      return rejection(() => PARSERS[cmd](args)) !== undefined;
    }),
    { numRuns: 40, seed: 7 },
  );
  for (const [cmd, a, f] of samples) {
    const args = cmd === 'stream' ? [...a, f] : [cmd, ...a, f];
    const expected = rejection(() => PARSERS[cmd]([...a, f]));
    const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
      execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NETTRACE_KERNEL_IDS: ids }, timeout: 30000 }, (e, stdout, stderr) =>
        resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, stdout, stderr }),
      ),
    );
    const shown = JSON.stringify(args);
    assert.equal(r.code, 2, `${shown}: ${r.stderr}`);
    assert.equal(r.stderr, `nettrace: ${expected} (see nettrace --help)\n`, shown);
    assert.equal(r.stdout, '', shown);
  }
  assert.ok(!fs.existsSync(ids), 'no run attached anything');
});
