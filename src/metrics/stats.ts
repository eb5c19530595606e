/** The tracer's own accounting as metrics: nothing lost without being counted. */
import { Tracer } from '../tracer';
import { MetricFamily, MetricSource } from './model';

export class TracerStatsMetrics implements MetricSource {
  constructor(
    private readonly tracer: Tracer,
    /** Flows the flow table dropped to stay within its cap. */
    private readonly flowEvictions: () => number = () => 0,
  ) {}

  families(): MetricFamily[] {
    const s = this.tracer.stats();
    const counter = (name: string, help: string, unit: string, value: number, labels = {}): MetricFamily => ({
      name,
      help,
      unit,
      kind: 'counter',
      series: [{ labels, value }],
    });
    return [
      counter('nettrace_records', 'Records delivered by the kernel.', '{record}', s.records),
      counter('nettrace_dropped_records', 'Records the ring buffer could not take (the reader was behind).', '{record}', s.drops),
      counter('nettrace_missed_hook_runs', 'Hook runs the kernel skipped because the hook was already running on that CPU.', '{run}', s.missed),
      {
        name: 'nettrace_evictions',
        help: 'Sockets dropped to make room: from the kernel-side socket table (table="kernel", their later records lack an owner) and from the flow table (table="flows").',
        unit: '{socket}',
        kind: 'counter',
        series: [
          { labels: { table: 'kernel' }, value: s.evictions },
          { labels: { table: 'flows' }, value: this.flowEvictions() },
        ],
      },
    ];
  }
}
