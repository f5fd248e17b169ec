import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { listenHttp } from '../http/listen-http.js';
import type { Registry } from 'prom-client';

/** A listening metrics endpoint. */
export interface RunningMetricsServer {
  /** The bound port: the one asked for, or the one the system chose for port 0. */
  readonly port: number;
  /** Stops listening and drops open connections (a scraper holds keep-alive ones open). */
  close(): Promise<void>;
}

/**
 * Where a scrape's text comes from: a prom-client Registry, or under `authz serve --workers N` the workers'
 * registries added up by the primary.
 */
export type MetricsSource = Pick<Registry, 'contentType' | 'metrics'>;

/** What {@link startMetricsServer} needs. */
export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: MetricsSource;
  readonly logger: Logger;
}

/** A scrape is one small GET; anything slower than this is a stuck or hostile client. */
const REQUEST_TIMEOUT_MS = 10_000; // 10 seconds
const HEADERS_TIMEOUT_MS = 5_000; // 5 seconds
/** Prometheus keeps one connection per target; the rest is for people with curl. */
const MAX_CONNECTIONS = 32;

/**
 * Serves the Prometheus scrape endpoint on its own port, apart from the gRPC Check service so that metrics
 * can be exposed to the monitoring network without exposing authorization, and a slow scrape never
 * competes with a decision.
 *
 * - `GET /metrics` → 200, the registry in the Prometheus text format
 * - `GET /healthz` → 200 `ok`
 * - any other path → 404; another method on a known path → 405 with `Allow: GET`
 *
 * @throws the listen error (e.g. `EADDRINUSE`) when the port cannot be bound.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<RunningMetricsServer> {
  const { registry, logger } = options;
  const server = createServer((request, response) => {
    handle(registry, request, response).catch((error: unknown) => {
      // A collect callback of a metric can throw; the scrape fails, the service does not.
      logger.error({ event: 'metrics_error', err: error }, 'metrics scrape failed');
      if (!response.headersSent) sendText(response, 500, 'internal error\n');
      else response.destroy();
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  const { port, close } = await listenHttp(server, options.host, options.port);
  logger.info({ event: 'metrics_started', host: options.host, port }, 'metrics listening');
  return { port, close };
}

async function handle(
  registry: MetricsSource,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/healthz') return sendText(response, 404, 'not found\n');
  // Only GET, as the scrape contract says; 405 rather than 404 because the resource does exist.
  if (request.method !== 'GET') return sendText(response, 405, 'method not allowed\n', { allow: 'GET' });
  if (path === '/healthz') return sendText(response, 200, 'ok');
  const body = await registry.metrics();
  send(response, 200, registry.contentType, body);
}

function sendText(
  response: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  send(response, status, 'text/plain; charset=utf-8', text, headers);
}

function send(
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(body);
}
