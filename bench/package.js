#!/usr/bin/env node
// Sizes of what `npm run package` writes, and time from start to first event of the single executable against
// `node bin/nettrace.js`: each is started ROUNDS times, alternating, while a client connects to a local server
// every 2 ms; the clock runs from spawn() to the first JSON line on stdout, and the child's CPU time is read then. Run as root after `npm run package`:
//   node bench/package.js [ROUNDS] > bench/results/package.json
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const zlib = require('node:zlib');

const root = path.join(__dirname, '..');
const version = require('../package.json').version;
const rounds = Number(process.argv[2] ?? 10);

function size(f) {
  return fs.statSync(path.join(root, f)).size;
}

/** The addon as it ships, read out of the npm tarball. */
function shippedAddonSize() {
  const tar = zlib.gunzipSync(fs.readFileSync(path.join(root, 'release', `nettrace-${version}.tgz`)));
  for (let off = 0; off + 512 <= tar.length; ) {
    const name = tar.toString('utf8', off, off + 100).replace(/\0.*$/s, '');
    const len = parseInt(tar.toString('utf8', off + 124, off + 136).replace(/\0.*$/s, '').trim() || '0', 8);
    if (name.endsWith('.node')) return len;
    off += 512 + Math.ceil(len / 512) * 512;
  }
  throw new Error('no .node file in the tarball');
}

function firstEvent(cmd, args, port) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, [...args, '--json', '-c', '1', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.once('data', () => resolve({ wall: Number(process.hrtime.bigint() - start) / 1e6, cpu: cpuMs(child.pid) }));
    child.on('exit', (code) => code && reject(new Error(`${cmd} exited ${code}: ${err}`)));
  });
}

/**
 * CPU time of every thread of PID so far (the verifier's work on its programs included, as it runs in their
 * bpf() calls): what start-up costs however loaded the machine is, where wall time also counts waiting for a core.
 */
function cpuMs(pid) {
  let ns = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
  return ns / 1e6;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stats = (runs) => ({
  wall_median: median(runs.map((r) => r.wall)),
  wall_max: Math.max(...runs.map((r) => r.wall)),
  cpu_median: median(runs.map((r) => r.cpu)),
});

async function main() {
  const server = net.createServer((c) => c.on('error', () => {}).end());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const churn = setInterval(() => net.connect(port, '127.0.0.1').on('error', () => {}).end(), 2);
  const sea = [];
  const node = [];
  try {
    for (let i = 0; i < rounds; i++) {
      sea.push(await firstEvent(path.join(root, 'release', 'nettrace'), [], port));
      node.push(await firstEvent(process.execPath, [path.join(root, 'bin', 'nettrace.js')], port));
    }
  } finally {
    clearInterval(churn);
    server.close();
  }
  const result = {
    sizes_bytes: {
      deb: size(`release/nettrace_${version}_amd64.deb`),
      single_executable: size('release/nettrace'),
      npm_tarball: size(`release/nettrace-${version}.tgz`),
      addon: shippedAddonSize(),
    },
    first_event_ms: {
      rounds,
      load_average: require('node:os').loadavg()[0],
      single_executable: stats(sea),
      node_bin: stats(node),
    },
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench/package.js: ${e.message}\n`);
  process.exit(1);
});
