import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { DevTlsPair } from '../../src/demo/dev-tls/dev-certificates.js';
import type { RawAnswer } from './raw-http.js';

/** An answer, with each `WWW-Authenticate` header on its own (Node joins repeated ones with commas). */
export interface ChallengedAnswer extends RawAnswer {
  readonly challenges: readonly string[];
}

/** A request's method and headers. */
export interface PlainRequestInit {
  readonly method?: string;
  readonly headers?: Record<string, string | string[]>;
}

/** How {@link tlsRequest} connects: the CA it trusts, and the client certificate it presents, if any. */
export interface TlsRequestInit extends PlainRequestInit {
  /** The CA file the server's certificate must chain to (nothing else is trusted). */
  readonly ca: string;
  /** The client certificate and key files to present; none when left out. */
  readonly client?: DevTlsPair;
}

/**
 * Sends one HTTPS request on a fresh TLS connection (no agent, so no session is reused and every request
 * makes its own handshake, with its own client certificate); 5 s timeout. Rejects when the handshake fails.
 *
 * @param base - `https://HOST:PORT`; only its host and port are used
 */
export function tlsRequest(base: string, path: string, init: TlsRequestInit): Promise<ChallengedAnswer> {
  const { hostname, port } = new URL(base);
  const client =
    init.client === undefined
      ? {}
      : { cert: readFileSync(init.client.cert), key: readFileSync(init.client.key) };
  return send(path, init, (onResponse) =>
    httpsRequest(
      {
        host: hostname,
        port,
        method: init.method ?? 'GET',
        path,
        headers: init.headers ?? {},
        agent: false,
        ca: readFileSync(init.ca),
        ...client,
      },
      onResponse,
    ),
  );
}

/**
 * Sends one plain HTTP request on a fresh connection; 5 s timeout.
 *
 * @param base - `http://HOST:PORT`; only its host and port are used
 */
export function plainRequest(
  base: string,
  path: string,
  init: PlainRequestInit = {},
): Promise<ChallengedAnswer> {
  const { hostname, port } = new URL(base);
  return send(path, init, (onResponse) =>
    httpRequest(
      { host: hostname, port, method: init.method ?? 'GET', path, headers: init.headers ?? {}, agent: false },
      onResponse,
    ),
  );
}

function send(
  path: string,
  init: PlainRequestInit,
  open: (onResponse: (res: IncomingMessage) => void) => ClientRequest,
): Promise<ChallengedAnswer> {
  const method = init.method ?? 'GET';
  return new Promise((resolve, reject) => {
    const req = open((res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      const challenges = res.rawHeaders.filter(
        (_value, index, raw) => index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'www-authenticate',
      );
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, challenges }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
