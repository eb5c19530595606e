/** Every metric source of a running tracer, behind one `families()`. */
import { Tracer } from '../tracer';
import { MetricFamily, MetricSource } from './model';
import { ProcessMetrics } from './process';
import { TracerStatsMetrics } from './stats';
import { TcpMetrics, TcpMetricsOptions } from './socket-metrics';

export class NettraceMetrics implements MetricSource {
  readonly tcp: TcpMetrics;
  /**
   * The socket metrics (TCP, UDP and steering locality), the tracer's own stats
   * and the process's; add() brings more (the OTLP sink's unsent points). The
   * exposition and OTLP pick up every one of them with no other change.
   */
  private readonly sources: MetricSource[];

  constructor(tracer: Tracer, options: TcpMetricsOptions = {}) {
    this.tcp = new TcpMetrics(tracer, options);
    this.sources = [this.tcp, new TracerStatsMetrics(tracer, () => this.tcp.flowEvictions), new ProcessMetrics()];
  }

  /** Another source, e.g. the OTLP sink's count of what it could not send. */
  add(source: MetricSource): void {
    this.sources.push(source);
  }

  families(): MetricFamily[] {
    return this.sources.flatMap((s) => s.families());
  }

  close(): void {
    this.tcp.close();
  }
}
