#!/usr/bin/env node
'use strict';
/*
 * nettrace in aggregate-only mode: batches are walked with the cursor and
 * counted, no event objects are made. This is the cheapest way to use the
 * library, so it measures the library's own overhead rather than a
 * consumer's. Runs until SIGINT/SIGTERM, then prints
 *   {"records": N, "drops": D, "cpu_ms": C, ...stats}
 * where cpu_ms is this process's CPU since it started (load included).
 * "ready" on stderr means every program is attached.
 */
const path = require('node:path');
const { Tracer } = require(path.join(__dirname, '..', 'dist', 'src', 'index.js'));

const tracer = Tracer.start({});
let records = 0;
tracer.onBatch((c) => {
  while (c.next()) records++;
});
process.stderr.write(`ready ${JSON.stringify(tracer.hooks.map((h) => `${h.name}:${h.status}`))}\n`);

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
      drops: stats.drops,
      cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
      stats,
    }) + '\n',
  );
  process.exit(0);
}
process.on('SIGINT', finish);
process.on('SIGTERM', finish);
