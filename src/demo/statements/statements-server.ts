import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Logger } from 'pino';
import { IDENTITY_HEADERS } from '../../contract/identity-headers.js';
import { listenHttp } from '../../http/listen-http.js';
import { answerStatementsRequest, EMAIL_HEADER } from './statements-answers.js';

export interface RunningStatements {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The stub statements upstream on `host:port` (0 picks a free port): reads the request's facts, answers
 * with {@link answerStatementsRequest}. Request bodies are never read (every route is a GET).
 */
export async function startStatements(options: {
  host: string;
  port: number;
  logger: Logger;
}): Promise<RunningStatements> {
  const server: Server = createServer((request, response) => {
    const answer = answerStatementsRequest({
      method: request.method ?? 'GET',
      path: (request.url ?? '/').split('?')[0] ?? '/',
      subject: headerValue(request, IDENTITY_HEADERS.subject),
      email: headerValue(request, EMAIL_HEADER),
    });
    const text = JSON.stringify(answer.body);
    response.writeHead(answer.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...answer.headers,
    });
    response.end(text);
    request.resume(); // drain any body, so the connection can be kept alive
  });
  server.requestTimeout = 10_000; // 10 seconds
  server.headersTimeout = 5_000; // 5 seconds
  // Envoy closes its idle connections first (idle_timeout 4s in envoy/gateway.yaml): see bank-server.ts.
  server.keepAliveTimeout = 5_000; // 5 seconds
  const { port, close } = await listenHttp(server, options.host, options.port);
  options.logger.info({ event: 'started', host: options.host, port }, 'statements listening');
  return { port, close };
}

/** A single-valued header, or undefined when absent or empty. */
function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
