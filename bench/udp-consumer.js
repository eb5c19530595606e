#!/usr/bin/env node
'use strict';
/*
 * nettrace with every hook on, for the UDP flood: counts records with the
 * cursor and adds up the close totals of the flood's own sockets (comm
 * udp-flood), so bench/udp.sh can hold them against what the flood counted.
 * "ready" on stderr means every program is attached. On SIGINT/SIGTERM prints
 *   {"records": N, "drops": D, "cpu_ms": C, "sockets": [{sport, dport, tx_bytes, ...}]}
 */
const path = require('node:path');
const { Tracer } = require(path.join(__dirname, '..', 'dist', 'src', 'index.js'));
const { Kind, UdpEvent } = require(path.join(__dirname, '..', 'dist', 'src', 'layout.js'));

const FLOOD = Buffer.from('udp-flood', 'latin1');
const tracer = Tracer.start({});
const sockets = [];
let records = 0;
tracer.onBatch((c) => {
  while (c.next()) {
    records++;
    if (c.kind !== Kind.Udp || c.udpEvent !== UdpEvent.Close || !c.hasOwner || !c.commEquals(FLOOD)) continue;
    sockets.push({
      sport: c.sport,
      dport: c.dport,
      tx_datagrams: c.txDatagrams,
      tx_bytes: c.txBytes,
      rx_datagrams: c.rxDatagrams,
      rx_bytes: c.rxBytes,
      drops: c.drops,
    });
  }
});
process.stderr.write(`ready ${JSON.stringify(tracer.hooks.map((h) => `${h.name}:${h.status}`))}\n`);

let stopping = false;
async function finish() {
  if (stopping) return;
  stopping = true;
  await tracer.stop();
  const stats = tracer.stats();
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ records, drops: stats.drops, cpu_ms: Math.round((cpu.user + cpu.system) / 1000), sockets }) + '\n');
  process.exit(0);
}
process.on('SIGINT', finish);
process.on('SIGTERM', finish);
