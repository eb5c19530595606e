#!/usr/bin/env node
'use strict';
/*
 * nettrace as a consumer of every record, in one of two modes:
 *   aggregate  every record folded into the flow table (all transitions
 *              aggregated, no object per event): `nettrace top`'s path
 *   stream     an event object and its JSON line per record, written to
 *              /dev/null: `nettrace --json > file`'s path
 * Runs until SIGINT/SIGTERM, then prints
 *   {"records": N, "drops": D, "cpu_ms": C, ...stats}
 * where cpu_ms is this process's CPU since it started (load included).
 * "ready" on stderr means every program is attached.
 *
 *   node bench/nettrace-consumer.js [aggregate|stream]
 */
const fs = require('node:fs');
const path = require('node:path');
const dist = path.join(__dirname, '..', 'dist', 'src');
const { Tracer } = require(path.join(dist, 'index.js'));
const { Clock, toEvent } = require(path.join(dist, 'events.js'));
const { FlowTable } = require(path.join(dist, 'flows', 'table.js'));

const mode = process.argv[2] ?? 'aggregate';
if (mode !== 'aggregate' && mode !== 'stream') {
  process.stderr.write('usage: node bench/nettrace-consumer.js [aggregate|stream]\n');
  process.exit(2);
}
const tracer = Tracer.start({});
const clock = new Clock();
let records = 0;
if (mode === 'aggregate') {
  const table = new FlowTable();
  tracer.onBatch((c) => {
    while (c.next()) {
      table.applyRecord(c, clock);
      records++;
    }
  });
  setInterval(() => table.tick(Date.now()), 1000).unref();
} else {
  const out = fs.openSync('/dev/null', 'w');
  tracer.onBatch((c) => {
    const lines = [];
    while (c.next()) {
      lines.push(JSON.stringify(toEvent(c, clock)));
      records++;
    }
    if (lines.length) fs.writeSync(out, lines.join('\n') + '\n');
  });
}
process.stderr.write(`ready ${mode} ${JSON.stringify(tracer.hooks.map((h) => `${h.name}:${h.status}`))}\n`);

let stopping = false;
async function finish() {
  if (stopping) return; // a second signal while stopping changes nothing
  stopping = true;
  await tracer.stop(); // resolves after the last batch, so `records` is final
  const stats = tracer.stats();
  const cpu = process.cpuUsage();
  process.stdout.write(
    JSON.stringify({
      records,
      drops: stats.drops + stats.queueDrops,
      cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
      stats,
    }) + '\n',
  );
  process.exit(0);
}
process.on('SIGINT', finish);
process.on('SIGTERM', finish);
