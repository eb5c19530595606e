#!/usr/bin/env node
'use strict';
/*
 * A DNS flood under `nettrace dns`'s tracer: dnsperf (Debian's package) asks
 * dnsmasq, serving a local zone in a network namespace made for the run, for
 * QPS queries a second over loopback for SECS seconds. Checks that every
 * query dnsperf sent is reported by nettrace as a lookup or counted as lost
 * (ring drops, unreadable messages), and measures nettrace's CPU per query.
 *
 *   sudo node bench/dns-flood.js [QPS] [SECS]      (defaults 50000 and 5)
 * Prints one JSON object, and writes it to bench/results/dns-flood-latest.json.
 */
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Clock, DnsLookups, Tracer } = require(path.join(__dirname, '..', 'dist', 'src', 'index.js'));
const { Kind } = require(path.join(__dirname, '..', 'dist', 'src', 'layout.js'));

const qps = Number(process.argv[2] ?? 50000);
const secs = Number(process.argv[3] ?? 5);
const ns = `ntdnsflood${process.pid}`;
const loadBefore = os.loadavg();
const names = Array.from({ length: 100 }, (_, i) => `h${i}.flood.test`);
const ip = (...a) => execFileSync('ip', a, { stdio: 'ignore' });
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  ip('netns', 'add', ns);
  const children = [];
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const hosts = names.map((n, i) => `--host-record=${n},10.88.${i >> 8}.${i & 255}`);
    children.push(spawn('ip', ['netns', 'exec', ns, 'dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', '--pid-file=', '--bind-interfaces',
      '--listen-address=127.0.0.1', '--local=/flood.test/', '--dns-forward-max=10000', ...hosts], { stdio: 'ignore' }));
    await wait(500);
    const data = path.join(os.tmpdir(), `${ns}.queries`);
    fs.writeFileSync(data, names.map((n) => `${n} A\n`).join(''));

    const tracer = Tracer.start({ events: ['dns'], trackSockets: false, ringBytes: 64 << 20 });
    const clock = new Clock();
    let lookups = 0;
    const pairing = new DnsLookups(() => lookups++, { timeoutMs: 2000 });
    let perf = 0;
    tracer.onBatch((c) => {
      while (c.next()) if (c.kind === Kind.Dns && c.hasOwner && c.pid === perf) pairing.add(c, clock);
    });
    await wait(200);
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const child = spawn('ip', ['netns', 'exec', ns, 'dnsperf', '-s', '127.0.0.1', '-d', data, '-l', String(secs), '-Q', String(qps), '-c', '4', '-q', '1000', '-t', '1'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    perf = child.pid;
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((r) => child.on('exit', r));
    await wait(2500); // the last answers drained, unanswered queries past their timeout
    pairing.expire(Number(process.hrtime.bigint()));
    const cpu = process.cpuUsage(cpu0);
    const wallS = (Date.now() - t0) / 1000;
    const kernel = tracer.dnsStats();
    const drops = tracer.stats().dropsByKind.dns;
    await tracer.stop();
    const num = (re) => Number((re.exec(out) ?? [])[1]);
    const sent = num(/Queries sent:\s+(\d+)/);
    const completed = num(/Queries completed:\s+(\d+)/);
    const s = pairing.stats;
    const result = {
      benchmark: 'dns-flood', date: new Date().toISOString(), load_before: loadBefore,
      qps_asked: qps, seconds: secs,
      dnsperf: { sent, completed, lost: num(/Queries lost:\s+(\d+)/), qps: num(/Queries per second:\s+([\d.]+)/) },
      nettrace: {
        lookups, answered: s.answered, timeouts: s.timeouts, retries: s.retries, malformed: s.malformed, unmatched: s.unmatched,
        kernel_messages: kernel.messages, ring_drops: drops,
        every_query_accounted: lookups + s.retries + Math.ceil(drops) >= sent,
        cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
        cpu_us_per_query: Number(((cpu.user + cpu.system) / Math.max(1, sent)).toFixed(2)),
        cpu_pct_of_one_core: Number((((cpu.user + cpu.system) / 1e6 / wallS) * 100).toFixed(1)),
      },
    };
    const text = JSON.stringify(result, null, 1);
    fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'results', 'dns-flood-latest.json'), text + '\n');
    console.log(text);
    fs.rmSync(data, { force: true });
  } finally {
    children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
    ip('netns', 'del', ns);
  }
}

main().catch((e) => {
  console.error(`dns-flood: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
