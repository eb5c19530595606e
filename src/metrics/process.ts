/**
 * The agent itself, under the names every Prometheus client library uses
 * (process_*), and nettrace_build_info: what a fleet dashboard needs to tell a
 * healthy agent from a starving or outdated one.
 */
import fs from 'node:fs';
import { MetricFamily, MetricSource } from './model';

const VERSION: string = require('../../../package.json').version;

/** Clock ticks are 100 per second on every Linux architecture nettrace runs on (USER_HZ). */
const TICKS = 100;

function gauge(name: string, help: string, unit: string, value: number, labels = {}): MetricFamily {
  return { name, help, unit, kind: 'gauge', series: [{ labels, value }] };
}

/** When this process started, from /proc/self/stat and the boot time; undefined if unreadable. */
function startTimeSeconds(): number | undefined {
  try {
    // the fields after the command (which may hold spaces) start at state, field 3; starttime is field 22
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))![1]);
    return btime + Number(fields[22 - 3]) / TICKS;
  } catch {
    return undefined;
  }
}

export class ProcessMetrics implements MetricSource {
  private readonly started = startTimeSeconds();

  families(): MetricFamily[] {
    const cpu = process.cpuUsage();
    const out: MetricFamily[] = [
      gauge('nettrace_build_info', 'Always 1: the nettrace version and the Node.js it runs on.', '', 1, { version: VERSION, nodejs: process.versions.node }),
      {
        name: 'process_cpu_seconds',
        help: 'User and system CPU time the agent spent.',
        unit: 's',
        kind: 'counter',
        series: [{ labels: {}, value: (cpu.user + cpu.system) / 1e6 }],
      },
      gauge('process_resident_memory_bytes', 'Resident memory of the agent.', 'By', process.memoryUsage.rss()),
    ];
    if (this.started !== undefined) out.push(gauge('process_start_time_seconds', 'When the agent started, in seconds since the epoch.', 's', this.started));
    try {
      out.push(gauge('process_open_fds', 'File descriptors the agent holds open.', '{fd}', fs.readdirSync('/proc/self/fd').length));
    } catch {
      // no /proc: left out rather than reported as 0
    }
    return out;
  }
}
