/**
 * `nettrace serve`: the agent form. Metrics for Prometheus on /metrics (and
 * /healthz), optionally pushed over OTLP too, until a signal stops it.
 */
import { ParseArgsConfig } from 'node:util';
import { OtlpSink } from '../../metrics/otlp';
import { NettraceMetrics } from '../../metrics/registry';
import { DEFAULT_METRICS_PORT, MetricsServer, parseListen, startMetricsServer } from '../../metrics/server';
import { watchNetns } from '../../netns-target';
import { Tracer } from '../../tracer';
import { fail, start, stopRequested, summary } from '../lifecycle';
import { COMMON_HELP, CommonOptions, flowTraceOptions, integer, parseCommand, UsageError } from '../options';

export const SERVE_USAGE = `Usage: nettrace serve [--listen HOST:PORT] [--otlp URL] [options] [FILTER]

Serves TCP metrics in the Prometheus text format on http://HOST:PORT/metrics
(and /healthz) until stopped by a signal; with --otlp, also pushes them over
OTLP/HTTP protobuf. The endpoint answers GET and HEAD of those two paths only.

Options:
      --listen HOST:PORT  address to serve on (default 127.0.0.1:${DEFAULT_METRICS_PORT}); HOST is an
                          IP address, [IPv6]:PORT works, 0.0.0.0 exposes it to the network
      --otlp URL          OTLP/HTTP base URL (http://collector:4318): /v1/metrics (and
                          /v1/logs) are appended; OTEL_EXPORTER_OTLP_* variables apply
      --otlp-logs         with --otlp, also send connect, accept, close and UDP socket events as logs
      --node NAME         the node this agent stands for, its host.name over OTLP (default
                          K8S_NODE_NAME, else the host name)
      --steering          also attach the per-packet receive-steering hooks and export
                          locality (see nettrace steering)
      --top N             values of the comm and host labels with series of their own
                          (default 25, 1 to 1000); the rest count as "other"
  -d, --duration SEC      stop after SEC seconds
${COMMON_HELP}`;

export const SERVE_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  listen: { type: 'string' },
  otlp: { type: 'string' },
  'otlp-logs': { type: 'boolean' },
  node: { type: 'string' },
  top: { type: 'string' },
  steering: { type: 'boolean' },
};

export interface ServeOptions extends CommonOptions {
  host: string;
  port: number;
  otlp?: string;
  otlpLogs: boolean;
  /** --node; undefined for the default (identity.ts). */
  node?: string;
  top: number;
  steering: boolean;
}

export function serveOptions(common: CommonOptions, values: Record<string, unknown>): ServeOptions {
  const listenText = values.listen === undefined ? String(DEFAULT_METRICS_PORT) : String(values.listen);
  const listen = parseListen(listenText);
  if (!listen) throw new UsageError(`--listen takes HOST:PORT with an IP address (or [IPv6]:PORT, or PORT), not '${listenText}'`);
  const otlp = values.otlp === undefined ? undefined : String(values.otlp);
  if (otlp !== undefined && !/^https?:\/\/[^\s/]+/.test(otlp)) throw new UsageError(`--otlp takes an http:// or https:// URL, not '${otlp}'`);
  if (values['otlp-logs'] && otlp === undefined) throw new UsageError('--otlp-logs needs --otlp');
  if (common.count !== undefined) throw new UsageError('serve runs until stopped: use --duration, not --count');
  const node = values.node === undefined ? undefined : String(values.node);
  if (node !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(node)) throw new UsageError(`--node takes a host name (letters, digits, '.', '-', '_'), not '${node}'`);
  return { ...common, ...listen, otlp, node, otlpLogs: (values['otlp-logs'] as boolean) ?? false, top: integer('--top', values.top, 1, 1000) ?? 25, steering: (values.steering as boolean) ?? false };
}

export interface ServeSession {
  /** Stops serving and exporting (a last OTLP export included); resolves when done. */
  stop(): Promise<void>;
}

/** Once only, so a failing collector does not fill the log: repeats of the last message are left out. */
function reporter(errors: NodeJS.WritableStream): (message: string) => void {
  let last = '';
  return (message) => {
    if (message === last) return;
    last = message;
    errors.write(`nettrace: ${message}\n`);
  };
}

export async function serveCommand(o: ServeOptions, tracer: Tracer, errors: NodeJS.WritableStream = process.stderr): Promise<ServeSession> {
  const report = reporter(errors);
  const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
  const metrics = new NettraceMetrics(tracer, { top: o.top, match: o.match, onError: (e) => report(`snapshot failed: ${messageOf(e)}`) });
  let running = true;
  void tracer.done.then(() => (running = false));
  let server: MetricsServer;
  try {
    server = await startMetricsServer({
      host: o.host,
      port: o.port,
      families: () => metrics.families(),
      healthy: () => running && tracer.error === undefined,
      onError: (e) => report(`/metrics failed: ${messageOf(e)}`),
    });
  } catch (e) {
    metrics.close();
    throw new Error(`cannot listen on ${o.host}:${o.port}: ${messageOf(e)}`);
  }
  const { host, port } = server.address;
  errors.write(`nettrace: serving http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics\n`);
  const identity = { node: o.node, netns: o.netns };
  const otlp = o.otlp === undefined ? undefined : OtlpSink.start(tracer, metrics, { endpoint: o.otlp, logs: o.otlpLogs, identity, onError: (m) => report(`otlp: ${m}`) });
  if (otlp) metrics.add(otlp);
  const unwatch = tracer.netns && watchNetns(tracer.netns, 1000, report);
  return {
    async stop() {
      unwatch?.();
      await server.close();
      if (otlp && !(await otlp.shutdown())) report('otlp: the last export did not finish within 5 s');
      metrics.close();
    },
  };
}

/** `nettrace serve [options] [FILTER]`: serves until a signal, --duration, or the tracer fails (exit 1). */
export function runServe(argv: string[]): void {
  const { common, values } = parseCommand(argv, SERVE_OPTIONS);
  if (common.help) return void process.stdout.write(SERVE_USAGE + '\n');
  const o = serveOptions(common, values);
  const stop = stopRequested(common);
  const tracer = start({ ...flowTraceOptions(common), steering: o.steering });
  const end = (code: number, message?: string): Promise<never> =>
    tracer.stop().then(() => (message ? fail(message, code) : process.exit(code)));
  serveCommand(o, tracer).then(
    (session) => {
      void Promise.race([stop, tracer.done]).then(() =>
        session.stop().then(() => {
          process.stderr.write(summary(tracer, tracer.stats().records, new Map(), 0, false));
          const failure = tracer.error;
          return failure ? end(1, failure instanceof Error ? failure.message : String(failure)) : end(0);
        }),
      );
    },
    (e) => end(1, e instanceof Error ? e.message : String(e)),
  );
}
