/**
 * OTLP/HTTP protobuf sink: the metric families every export interval, and
 * optionally connect, accept, close and UDP socket events as log records, through the
 * OpenTelemetry JS SDK and exporters. Headers, timeouts, compression and TLS
 * come from the standard OTEL_EXPORTER_OTLP_* variables; the resource is the
 * agent's identity (identity.ts), which OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES override. What could not be sent is counted (families()).
 */
import { diag, DiagLogLevel, HrTime, ValueType } from '@opentelemetry/api';
import { Logger } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { detectResources, envDetector, hostDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import {
  AggregationTemporality,
  CollectionResult,
  DataPointType,
  MeterProvider,
  MetricData,
  MetricProducer,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { DnsLookups } from '../dns/lookups';
import { dnsSummary } from '../dns/text';
import { Clock, NettraceEvent, toEvent } from '../events';
import { Kind } from '../layout';
import { Container } from '../flows/cgroup-names';
import { CgroupResolver } from '../flows/cgroups';
import { Tracer } from '../tracer';
import { agentResource, AgentIdentity } from './identity';
import { MetricFamily, MetricSource } from './model';
import { CountingLogExporter, CountingMetricExporter } from './unsent';

const VERSION: string = require('../../../package.json').version;
const SCOPE = { name: 'nettrace', version: VERSION };

export interface OtlpOptions {
  /**
   * Base URL as OTEL_EXPORTER_OTLP_ENDPOINT takes it (http://host:4318): /v1/metrics and /v1/logs are
   * appended. OTEL_EXPORTER_OTLP_METRICS_ENDPOINT and _LOGS_ENDPOINT still win, as the specification
   * has it. Without it, the endpoints come from the environment (default http://localhost:4318).
   */
  endpoint?: string;
  /** Also send connect, accept and close events as log records (default false). */
  logs?: boolean;
  /** Milliseconds between metric exports (default OTEL_METRIC_EXPORT_INTERVAL, else 60000). */
  intervalMs?: number;
  /** Told of export failures; when given, nettrace installs it as the OpenTelemetry diagnostic logger (warnings and errors). */
  onError?: (message: string) => void;
  /** The node and namespace this agent stands for (the resource's host.name and service.instance.id). */
  identity?: AgentIdentity;
}

/** Log records waiting for export at most; past it an event is counted as unsent rather than queued. */
const LOG_QUEUE = 8192;

function hrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

function signalUrl(endpoint: string | undefined, signal: 'METRICS' | 'LOGS'): string | undefined {
  const specific = process.env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`];
  if (specific) return specific;
  return endpoint && `${endpoint.replace(/\/+$/, '')}/v1/${signal.toLowerCase()}`;
}

function envInterval(): number | undefined {
  const v = Number(process.env.OTEL_METRIC_EXPORT_INTERVAL);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** Seconds and ratios (unit 1) are fractions; bytes and counts of things ({connection}, {segment}...) whole numbers. */
function valueType(unit: string): ValueType {
  return unit === 's' || unit === '1' ? ValueType.DOUBLE : ValueType.INT;
}

/**
 * Our families as the SDK's metric data, cumulative since `startMs`. A family with
 * no series yet is left out: an empty metric is dropped downstream anyway.
 */
export function toMetricData(families: MetricFamily[], startMs: number, nowMs: number): MetricData[] {
  const startTime = hrTime(startMs);
  const endTime = hrTime(nowMs);
  return families.filter((f) => f.series.length > 0).map((f): MetricData => {
    const descriptor = { name: f.name, description: f.help, unit: f.unit, valueType: valueType(f.unit) };
    if (f.kind === 'histogram') {
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: f.series.map((s) => ({
          startTime,
          endTime,
          attributes: s.labels,
          value: { buckets: { boundaries: s.bounds, counts: s.counts }, sum: s.sum, count: s.count },
        })),
      };
    }
    const dataPoints = f.series.map((s) => ({ startTime, endTime, attributes: s.labels, value: s.value }));
    if (f.kind === 'gauge') {
      return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints };
    }
    return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints };
  });
}

/** The attributes of an event's log record: OpenTelemetry's names where there are some, nettrace.* for the rest. */
export function logAttributes(e: NettraceEvent, container?: Container): Record<string, string | number> {
  const out: Record<string, string | number> = {
    'event.name': `nettrace.${e.type}`,
    'network.transport': e.type === 'dns' ? e.proto : e.type === 'udp' ? 'udp' : 'tcp',
    'network.type': e.family === 4 ? 'ipv4' : 'ipv6',
    'network.local.address': e.saddr,
    'network.local.port': e.sport,
    'network.peer.address': e.daddr,
    'network.peer.port': e.dport,
  };
  if (e.pid !== null) out['process.pid'] = e.pid;
  if (e.comm !== null) out['process.executable.name'] = e.comm;
  if (container) Object.assign(out, containerAttributes(container));
  const mapped = new Set(['type', 'ts', 'family', 'saddr', 'sport', 'daddr', 'dport', 'pid', 'comm']);
  if (e.type === 'dns') {
    out['dns.question.name'] = e.name; // OpenTelemetry's semantic conventions name these two
    out['dns.answers'] = JSON.stringify(e.addresses);
    for (const k of ['name', 'addresses']) mapped.add(k);
  }
  for (const [k, v] of Object.entries(e)) {
    if (mapped.has(k) || v === null || v === undefined) continue;
    // answers, CNAME chains and UDP peers are lists: attributes hold them as JSON
    out[`nettrace.${k}`] = typeof v === 'object' ? JSON.stringify(v) : typeof v === 'boolean' ? String(v) : (v as string | number);
  }
  return out;
}

/** OpenTelemetry's container and k8s names, and systemd.unit and nettrace.cgroup.path for what they lack. */
export function containerAttributes(c: Container): Record<string, string> {
  const out: Record<string, string> = { 'nettrace.cgroup.path': c.path };
  if (c.id !== null) out['container.id'] = c.id;
  if (c.runtime !== null) out['container.runtime'] = c.runtime;
  if (c.pod_uid !== null) out['k8s.pod.uid'] = c.pod_uid;
  if (c.qos !== null) out['k8s.pod.qos_class'] = c.qos;
  if (c.unit !== null) out['systemd.unit'] = c.unit;
  return out;
}

export class OtlpSink implements MetricSource {
  private readonly meters: MeterProvider;
  private readonly loggers: LoggerProvider | undefined;
  private readonly unsubscribe: (() => void) | undefined;
  private readonly metricExporter: CountingMetricExporter;
  private readonly logExporter: CountingLogExporter | undefined;
  /** Events not queued because LOG_QUEUE records already waited. */
  private logsOverflowed = 0;

  private constructor(tracer: Tracer, source: MetricSource, options: OtlpOptions) {
    if (options.onError) installDiagnostics(options.onError);
    // the host detector's host.arch and host.id, then our identity, then what the environment says
    const resource = detectResources({ detectors: [hostDetector] })
      .merge(resourceFromAttributes(agentResource(VERSION, options.identity)))
      .merge(detectResources({ detectors: [envDetector] }));
    const startMs = Date.now();
    const producer: MetricProducer = {
      collect: async (): Promise<CollectionResult> => ({
        resourceMetrics: { resource, scopeMetrics: [{ scope: SCOPE, metrics: toMetricData(source.families(), startMs, Date.now()) }] },
        errors: [],
      }),
    };
    this.metricExporter = new CountingMetricExporter(new OTLPMetricExporter({ url: signalUrl(options.endpoint, 'METRICS') }));
    const reader = new PeriodicExportingMetricReader({
      exporter: this.metricExporter,
      exportIntervalMillis: options.intervalMs ?? envInterval() ?? 60000,
      metricProducers: [producer],
    });
    this.meters = new MeterProvider({ resource, readers: [reader] });
    if (options.logs) {
      const exporter = (this.logExporter = new CountingLogExporter(new OTLPLogExporter({ url: signalUrl(options.endpoint, 'LOGS') })));
      this.loggers = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter, maxQueueSize: LOG_QUEUE })] });
      const logger = this.loggers.getLogger(SCOPE.name, SCOPE.version);
      const clock = new Clock();
      const cgroups = new CgroupResolver();
      // with the dns events on, one log per lookup (query and answer paired), as `nettrace dns` prints them
      const emitCounted = (e: NettraceEvent): void => {
        // the processor would drop it silently: the records it holds are those emitted and not yet handed over
        if (exporter.emitted - exporter.handed >= LOG_QUEUE) this.logsOverflowed++;
        else {
          exporter.emitted++;
          emitEvent(logger, e, e.cgroup === null ? undefined : cgroups.lookup(e.cgroup));
        }
      };
      const lookups = tracer.dnsEnabled ? new DnsLookups(emitCounted) : undefined;
      const expiry = lookups && setInterval(() => lookups.expire(Number(process.hrtime.bigint())), 1000).unref();
      const off = tracer.onBatch((c) => {
        while (c.next()) {
          if (c.kind === Kind.Dns) lookups?.add(c, clock);
          else if (c.kind !== Kind.State) emitCounted(toEvent(c, clock));
        }
      });
      this.unsubscribe = () => {
        clearInterval(expiry);
        off();
      };
    }
  }

  /** Starts exporting `source`'s metrics (and, with `logs`, `tracer`'s events). */
  static start(tracer: Tracer, source: MetricSource, options: OtlpOptions = {}): OtlpSink {
    return new OtlpSink(tracer, source, options);
  }

  /** What could not be sent: the points of failed metric exports, and log records failed or past the queue. */
  families(): MetricFamily[] {
    const unsent = (name: string, help: string, unit: string, value: number): MetricFamily => ({ name, help, unit, kind: 'counter', series: [{ labels: {}, value }] });
    return [
      unsent('nettrace_otlp_failed_metric_points', 'Metric data points of OTLP exports that failed (the collector was down or answered an error).', '{point}', this.metricExporter.failed),
      unsent(
        'nettrace_otlp_failed_log_records',
        'Event log records not delivered over OTLP: their export failed, or the export queue was full.',
        '{record}',
        (this.logExporter?.failed ?? 0) + this.logsOverflowed,
      ),
    ];
  }

  /** Exports what is pending now. */
  async flush(): Promise<void> {
    await Promise.all([this.meters.forceFlush(), this.loggers?.forceFlush()]);
  }

  /**
   * Exports a last time and stops, waiting at most `waitMs` for the collector
   * (an unreachable one would otherwise hold a stopping agent for the exporter's
   * whole timeout and retries); resolves false if the last export did not finish.
   */
  async shutdown(waitMs = 5000): Promise<boolean> {
    this.unsubscribe?.();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)));
    const done = Promise.all([this.meters.shutdown(), this.loggers?.shutdown()]).then(() => true);
    try {
      return await Promise.race([done, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function emitEvent(logger: Logger, e: NettraceEvent, container: Container | undefined): void {
  logger.emit({
    eventName: `nettrace.${e.type}`,
    timestamp: e.ts,
    body: e.type === 'dns' ? `dns ${dnsSummary(e)}` : `${e.type === 'udp' ? `udp ${e.event}` : e.type} ${e.saddr}:${e.sport} > ${e.daddr}:${e.dport}`,
    attributes: logAttributes(e, container),
  });
}

function installDiagnostics(report: (message: string) => void): void {
  const say = (message: string, ...args: unknown[]): void => {
    const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : '')).filter(Boolean);
    report([message, ...detail].join(' ').replace(/\s+/g, ' ').trim());
  };
  const quiet = (): void => {};
  diag.setLogger({ error: say, warn: say, info: quiet, debug: quiet, verbose: quiet }, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}
