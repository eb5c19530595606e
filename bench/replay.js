#!/usr/bin/env node
'use strict';
/*
 * Decode + aggregate throughput on one core, from real batches.
 *
 *   node bench/replay.js record FILE [SECONDS]   trace max-rate loopback churn (the native
 *                                                generator) and save every batch to FILE
 *   node bench/replay.js replay FILE [SECONDS]   feed FILE's batches, over and over, through
 *                                                the cursor and the flow table, on this thread
 *
 * FILE holds batches as they came from the addon, each preceded by its length
 * (u32, little endian). replay prints one JSON line: events per second of
 * this thread's CPU time (one core's worth, however loaded the machine) and
 * per wall second, for decode + aggregate and for the decoder alone (walking
 * every record and reading the fields the flow table reads), so the table's
 * share is visible.
 * The replayed clock is the real one: records keep their recorded timestamps.
 */
const fs = require('node:fs');
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist', 'src');
const { Tracer } = require(path.join(dist, 'index.js'));
const { RecordCursor } = require(path.join(dist, 'record-cursor.js'));
const { Clock } = require(path.join(dist, 'events.js'));
const { FlowTable } = require(path.join(dist, 'flows', 'flow-table.js'));
const { churnGenerator } = require(path.join(dist, 'bench', 'generator.js'));

const [mode, file, secs] = process.argv.slice(2);
if (!['record', 'replay'].includes(mode) || !file) {
  process.stderr.write('usage: node bench/replay.js record|replay FILE [SECONDS]\n');
  process.exit(2);
}
const seconds = Number(secs ?? 5);

async function record() {
  const out = fs.openSync(file, 'w');
  const tracer = Tracer.start({});
  const run = churnGenerator().ChurnRun.open({ concurrency: 32, acceptors: 8, payload: 0, server: '127.0.0.1', rst: true, durationMs: seconds * 1000 });
  let records = 0;
  let bytes = 0;
  tracer.onBatch((c) => {
    const batch = c.batch;
    const len = Buffer.alloc(4);
    len.writeUInt32LE(batch.length);
    fs.writeSync(out, len);
    fs.writeSync(out, batch);
    bytes += batch.length;
    while (c.next()) records++;
  });
  run.go();
  while (run.sample().running) await new Promise((r) => setTimeout(r, 200));
  const end = run.finish();
  await tracer.stop();
  fs.closeSync(out);
  process.stdout.write(JSON.stringify({ file, records, bytes, conns: end.conns, drops: tracer.stats().drops }) + '\n');
}

function replay() {
  const data = fs.readFileSync(file);
  const batches = [];
  for (let at = 0; at + 4 <= data.length; ) {
    const len = data.readUInt32LE(at);
    batches.push(data.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  const cursor = new RecordCursor();
  const clock = new Clock();

  const measure = (name, perRecord, setup) => {
    const state = setup();
    let events = 0;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const until = t0 + BigInt(Math.round(seconds * 1e9));
    let now = t0;
    while (now < until) {
      for (const b of batches) {
        cursor.reset(b);
        while (cursor.next()) {
          perRecord(cursor, state);
          events++;
        }
      }
      state.tick?.();
      now = process.hrtime.bigint();
    }
    const wall = Number(now - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    // per CPU second: on a shared machine this thread does not get a whole core
    return { [`${name}_events_per_cpu_s`]: Math.round(events / cpuS), [`${name}_events_per_wall_s`]: Math.round(events / wall), [`${name}_cpu_s`]: cpuS };
  };

  const decodeOnly = measure(
    'decode',
    (c, s) => {
      // what applyRecord reads, without the table
      s.x ^= c.kind + c.cookie + c.netns + c.family + c.sport + c.dport + c.tsNs + (c.hasOwner ? c.pid : 0) + c.saddr.length;
    },
    () => ({ x: 0 }),
  );
  const aggregate = measure(
    'aggregate',
    (c, s) => s.table.applyRecord(c, clock),
    () => {
      const table = new FlowTable();
      return { table, tick: () => table.tick(Date.now()) };
    },
  );
  const records = batches.reduce((n, b) => {
    cursor.reset(b);
    while (cursor.next()) n++;
    return n;
  }, 0);
  process.stdout.write(JSON.stringify({ file, batches: batches.length, records, ...decodeOnly, ...aggregate }) + '\n');
}

if (mode === 'record') record().catch((e) => { process.stderr.write(`replay: ${e.message}\n`); process.exit(1); });
else replay();
