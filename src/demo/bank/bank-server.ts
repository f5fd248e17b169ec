import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { IDENTITY_HEADERS } from '../../contract/identity-headers.js';
import { listenHttp } from '../../http/listen-http.js';
import { readBoundedBody } from '../../http/read-bounded-body.js';
import { fromCents, Ledger } from './ledger.js';
import { APP_PREFIX, type WebAppFile } from './web-app.js';

const MAX_BODY_BYTES = 16 * 1024; // 16 KiB: a transfer is a few dozen bytes

export interface RunningBank {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The stub banking upstream behind Envoy. It trusts `x-auth-subject` because only Envoy can reach it
 * and the authz service sets that header (and strips client copies) on every allowed request.
 *
 * - `GET /balance` → 200 `{"account", "balance"}`
 * - `GET /accounts/{id}/balance` → 200 for the account's owner (`id` = subject), 403 for anyone else
 * - `POST /transfer` `{"to": "bob", "amount": 25}` → 201 `{"from", "to", "amount", "balance"}`
 * - `GET /healthz` → 200
 * - `GET|HEAD /app/...` → the single-page app's files (`app`, from `loadWebApp`); `/app` redirects to `/app/`
 */
export async function startBank(options: {
  host: string;
  port: number;
  logger: Logger;
  /** The built single-page app; without it, `/app/` answers 404. */
  app?: (path: string) => WebAppFile | undefined;
}): Promise<RunningBank> {
  const ledger = new Ledger();
  const app = options.app;
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (path === '/app' || path.startsWith(APP_PREFIX)) return serveApp(app, path, request, response);
    handle(ledger, path, request, response).catch((error: unknown) => {
      options.logger.error({ event: 'bank_error', err: error }, 'bank request failed');
      if (!response.headersSent) send(response, 500, { error: 'internal_error' });
      else response.destroy();
    });
  });
  server.requestTimeout = 10_000; // 10 seconds
  server.headersTimeout = 5_000; // 5 seconds
  // Idle keep-alive connections are closed after this; Envoy closes its own first (idle_timeout 4s in
  // envoy/envoy.yaml), so that it never sends a request on a connection this server is closing.
  server.keepAliveTimeout = 5_000; // 5 seconds, Node's default, said here because Envoy's setting rests on it
  const { port, close } = await listenHttp(server, options.host, options.port);
  options.logger.info({ event: 'started', host: options.host, port }, 'bank listening');
  return { port, close };
}

async function handle(
  ledger: Ledger,
  path: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (path === '/healthz') return send(response, 200, { status: 'ok' });
  const account = /^\/accounts\/([^/]+)\/balance$/.exec(path)?.[1];
  if (path !== '/balance' && path !== '/transfer' && account === undefined) {
    return send(response, 404, { error: 'not_found' });
  }

  const subject = request.headers[IDENTITY_HEADERS.subject];
  if (typeof subject !== 'string' || subject === '') {
    return send(response, 401, { error: 'unauthenticated', error_description: 'no authenticated subject' });
  }
  if (account !== undefined) {
    // An account's balance is shown to its owner only: the id in the path is not proof of anything.
    if (request.method !== 'GET')
      return send(response, 405, { error: 'method_not_allowed' }, { allow: 'GET' });
    if (decodeURIComponentSafe(account) !== subject)
      return send(response, 403, { error: 'not_your_account' });
    const balance = ledger.balanceOf(subject);
    if (balance === undefined) return send(response, 503, { error: 'no_capacity' });
    return send(response, 200, { account: subject, balance: fromCents(balance) });
  }
  if (path === '/balance') {
    if (request.method !== 'GET')
      return send(response, 405, { error: 'method_not_allowed' }, { allow: 'GET' });
    const balance = ledger.balanceOf(subject);
    if (balance === undefined) return send(response, 503, { error: 'no_capacity' });
    return send(response, 200, { account: subject, balance: fromCents(balance) });
  }
  if (request.method !== 'POST')
    return send(response, 405, { error: 'method_not_allowed' }, { allow: 'POST' });
  if (!/^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '')) {
    return send(response, 415, {
      error: 'unsupported_media_type',
      error_description: 'send application/json',
    });
  }
  const body = await readBoundedBody(request, MAX_BODY_BYTES);
  if (body === undefined) return send(response, 413, { error: 'payload_too_large' });
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return send(response, 400, { error: 'invalid_body', error_description: 'the body is not JSON' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return send(response, 400, {
      error: 'invalid_body',
      error_description: 'send {"to": "...", "amount": 25}',
    });
  }
  const { to, amount } = parsed as { to?: unknown; amount?: unknown };
  const result = ledger.transfer(subject, to, amount);
  if (!result.ok) {
    const status = result.refusal === 'insufficient_funds' ? 409 : 400;
    return send(response, status, { error: result.refusal });
  }
  return send(response, 201, { from: subject, to, amount, balance: fromCents(result.balanceCents) });
}

/** Static files of the app, by exact lookup; public (Envoy's `/app/**` route needs no token). */
function serveApp(
  app: ((path: string) => WebAppFile | undefined) | undefined,
  path: string,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  if (request.method !== 'GET' && request.method !== 'HEAD')
    return send(response, 405, { error: 'method_not_allowed' }, { allow: 'GET, HEAD' });
  // A relative URL would resolve against /, not /app/: send the browser to the folder form first.
  if (path === '/app') {
    response.writeHead(308, { location: APP_PREFIX, 'content-length': 0 });
    response.end();
    return;
  }
  const file = app?.(path);
  if (file === undefined) return send(response, 404, { error: 'not_found' });
  response.writeHead(200, { ...file.headers, 'content-length': file.body.length });
  response.end(request.method === 'HEAD' ? undefined : file.body);
}

function send(
  response: ServerResponse,
  status: number,
  body: object,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

function decodeURIComponentSafe(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
