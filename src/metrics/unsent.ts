/**
 * The OTLP exporters, counting what they could not deliver: a collector that is
 * down or answers errors loses points, and the agent says how many.
 */
import { ExportResult, ExportResultCode } from '@opentelemetry/core';
import { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, InstrumentType, PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** Data points in a request (a histogram series is one point, as OTLP counts them). */
export function pointsOf(m: ResourceMetrics): number {
  let n = 0;
  for (const sm of m.scopeMetrics) for (const metric of sm.metrics) n += metric.dataPoints.length;
  return n;
}

export class CountingMetricExporter implements PushMetricExporter {
  /** Data points of exports that failed. */
  failed = 0;
  constructor(private readonly inner: PushMetricExporter) {}

  export(metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    this.inner.export(metrics, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.failed += pointsOf(metrics);
      done(result);
    });
  }

  selectAggregationTemporality(kind: InstrumentType): AggregationTemporality {
    return this.inner.selectAggregationTemporality?.(kind) ?? AggregationTemporality.CUMULATIVE;
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

export class CountingLogExporter implements LogRecordExporter {
  /** Records the sink emitted, and those the batch processor handed to export: the difference is its queue. */
  emitted = 0;
  handed = 0;
  /** Records of exports that failed. */
  failed = 0;
  constructor(private readonly inner: LogRecordExporter) {}

  export(logs: ReadableLogRecord[], done: (result: ExportResult) => void): void {
    this.handed += logs.length;
    this.inner.export(logs, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.failed += logs.length;
      done(result);
    });
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
