/**
 * The metrics endpoint. It runs as root on production machines, so it answers
 * GET and HEAD of /metrics and /healthz and nothing else, bounds what a client
 * can make it hold (header size and count, connections, time to send a
 * request), and refuses anything malformed with a status line and a close.
 */
import http from 'node:http';
import net from 'node:net';
import { EXPOSITION_CONTENT_TYPE, renderExposition } from './exposition';
import { MetricFamily } from './model';

export const DEFAULT_METRICS_PORT = 9559;

export interface MetricsServerOptions {
  host: string;
  port: number;
  families: () => MetricFamily[];
  /** Whether /healthz answers 200 (tracing runs) or 503. */
  healthy: () => boolean;
  /** Told of a failure to render /metrics (the client gets a 500). */
  onError?: (e: unknown) => void;
}

export const LIMITS = {
  /** Request line and headers together. */
  maxHeaderBytes: 8192,
  maxHeaders: 64,
  maxUrlBytes: 1024,
  maxConnections: 64,
  /** A client must have sent its whole request line and headers within this. */
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10000,
  /** An idle connection is closed after this. */
  idleTimeoutMs: 15000,
};

const PATHS = new Set(['/metrics', '/healthz']);

function reply(res: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}, head = false): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(head ? undefined : body);
}

function handle(o: MetricsServerOptions, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '';
  const head = req.method === 'HEAD';
  // the parser takes a request line without a version as HTTP/0.9
  if (req.httpVersionMajor !== 1) return reply(res, 505, 'HTTP/1.0 or 1.1 only\n', { Connection: 'close' });
  // a body we will not read must not be parsed as the next request
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) {
    return reply(res, 413, 'requests carry no body\n', { Connection: 'close' });
  }
  if (Buffer.byteLength(url) > LIMITS.maxUrlBytes) return reply(res, 414, 'URI too long\n', { Connection: 'close' });
  const path = url.split('?')[0];
  if (!PATHS.has(path)) return reply(res, 404, 'not found: try /metrics or /healthz\n', {}, head);
  if (req.method !== 'GET' && !head) return reply(res, 405, 'only GET and HEAD\n', { Allow: 'GET, HEAD' });
  if (path === '/healthz') {
    const ok = o.healthy();
    return reply(res, ok ? 200 : 503, ok ? 'ok\n' : 'tracing stopped\n', {}, head);
  }
  let text: string;
  try {
    text = renderExposition(o.families());
  } catch (e) {
    o.onError?.(e);
    return reply(res, 500, 'metrics unavailable\n', {}, head);
  }
  reply(res, 200, text, { 'Content-Type': EXPOSITION_CONTENT_TYPE }, head);
}

/** Answers a request the parser refused, then closes; never throws. */
function refuse(err: NodeJS.ErrnoException, socket: net.Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

export interface MetricsServer {
  /** Where it listens (the port is resolved when 0 was asked for). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer(
    {
      maxHeaderSize: LIMITS.maxHeaderBytes,
      headersTimeout: LIMITS.headersTimeoutMs,
      requestTimeout: LIMITS.requestTimeoutMs,
      keepAliveTimeout: 5000,
      // how often Node checks the two timeouts above (30 s by default)
      connectionsCheckingInterval: 1000,
    },
    (req, res) => handle(o, req, res),
  );
  server.maxHeadersCount = LIMITS.maxHeaders;
  server.maxConnections = LIMITS.maxConnections;
  server.setTimeout(LIMITS.idleTimeoutMs, (socket) => socket.destroy());
  server.on('clientError', refuse);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as net.AddressInfo;
  return {
    address: { host: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** HOST:PORT, [V6]:PORT or PORT (on 127.0.0.1); the host is an IP address or localhost. */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text) ?? /^()(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1] === '' || m[1] === 'localhost' ? '127.0.0.1' : m[1];
  const port = Number(m[2]);
  if (net.isIP(host) === 0 || port > 65535) return undefined;
  return { host, port };
}
