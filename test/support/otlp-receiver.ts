/** The OTLP tests' receiver: decodes requests with the official OTLP .proto definitions (from @opentelemetry/otlp-grpc-exporter-base). */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import protobuf from 'protobufjs';

const PROTOS = path.join(path.dirname(require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json')), 'build', 'protos');
/** Every receiver made, closed by closeReceivers(). */
const servers: http.Server[] = [];

export function closeReceivers(): void {
  servers.forEach((s) => s.close());
}

export function otlpTypes(): { metrics: protobuf.Type; logs: protobuf.Type } {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS, target);
  root.loadSync(['opentelemetry/proto/collector/metrics/v1/metrics_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto']);
  return {
    metrics: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
    logs: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
  };
}

export interface KeyValue {
  key: string;
  value: { stringValue?: string; intValue?: number; doubleValue?: number };
}
export type Attrs = Record<string, string | number | undefined>;
export const attrs = (list: KeyValue[] = []): Attrs =>
  Object.fromEntries(list.map((kv) => [kv.key, kv.value.stringValue ?? kv.value.intValue ?? kv.value.doubleValue]));

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** An OTLP/HTTP receiver: decodes every request it gets and answers with an empty success (or with `status`). */
export async function receiver(status = 200): Promise<{ port: number; got: Received[] }> {
  const types = otlpTypes();
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = zlib.gunzipSync(raw);
      const type = req.url === '/v1/metrics' ? types.metrics : req.url === '/v1/logs' || req.url === '/custom/logs' ? types.logs : undefined;
      if (!type) {
        res.writeHead(404).end();
        return;
      }
      const body = type.toObject(type.decode(raw), { longs: Number, enums: String, bytes: String, defaults: false }) as Record<string, unknown>;
      got.push({ path: req.url!, headers: req.headers, body });
      res.writeHead(status, { 'Content-Type': 'application/x-protobuf' }).end();
    });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, got };
}

export interface Point {
  metric: string;
  resource: Attrs;
  attributes: Attrs;
  value: number;
  /** Which field held it: asInt, asDouble, or count (a histogram). */
  field: 'asInt' | 'asDouble' | 'count';
}

/** Every number and histogram-count data point of every metrics request, flattened. */
export function points(got: Received[]): Point[] {
  const out: Point[] = [];
  for (const r of got.filter((g) => g.path === '/v1/metrics')) {
    for (const rm of (r.body.resourceMetrics ?? []) as { resource: { attributes: KeyValue[] }; scopeMetrics: { metrics: Record<string, never>[] }[] }[]) {
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          const data = (m.sum ?? m.gauge ?? m.histogram) as { dataPoints?: { attributes: KeyValue[]; asInt?: number; asDouble?: number; count?: number }[] } | undefined;
          for (const p of data?.dataPoints ?? []) {
            out.push({ metric: m.name, resource: attrs(rm.resource.attributes), attributes: attrs(p.attributes), value: p.asInt ?? p.asDouble ?? p.count ?? 0, field: p.asInt !== undefined ? 'asInt' : p.asDouble !== undefined ? 'asDouble' : 'count' });
          }
        }
      }
    }
  }
  return out;
}

/** The latest value sent for `metric` with (at least) these attributes, summed over matching series of that request. */
export function latest(got: Received[], metric: string, want: Attrs): number | undefined {
  for (let i = got.length - 1; i >= 0; i--) {
    const ps = points([got[i]]).filter((p) => p.metric === metric && Object.entries(want).every(([k, v]) => p.attributes[k] === v));
    if (ps.length) return ps.reduce((s, p) => s + p.value, 0);
  }
  return undefined;
}

export function logRecords(got: Received[]): { body: string; attributes: Attrs; resource: Attrs }[] {
  const out: { body: string; attributes: Attrs; resource: Attrs }[] = [];
  for (const r of got.filter((g) => g.path.endsWith('/logs'))) {
    for (const rl of (r.body.resourceLogs ?? []) as { resource: { attributes: KeyValue[] }; scopeLogs: { logRecords: { body: { stringValue: string }; attributes: KeyValue[] }[] }[] }[]) {
      for (const sl of rl.scopeLogs ?? []) {
        for (const lr of sl.logRecords ?? []) out.push({ body: lr.body.stringValue, attributes: attrs(lr.attributes), resource: attrs(rl.resource.attributes) });
      }
    }
  }
  return out;
}

