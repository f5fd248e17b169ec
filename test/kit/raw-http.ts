import { request, type IncomingHttpHeaders } from 'node:http';

/** An HTTP answer as it came off the wire. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Each `WWW-Authenticate` line on its own, in order (`headers` joins them with commas). */
  readonly challenges: readonly string[];
  readonly body: string;
}

/**
 * Sends one HTTP/1.1 request with the path and header lines exactly as given: fetch would resolve `..`
 * and `//`, and fold repeated headers into one. A fresh connection each time; 5 s timeout.
 *
 * @param base `http://HOST:PORT`; only its host and port are used.
 */
export function rawRequest(
  base: string,
  path: string,
  init: {
    readonly method?: string;
    readonly headers?: Record<string, string | string[]>;
    /** Sent as the request body (with its content-length). */
    readonly body?: string;
  } = {},
): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  const method = init.method ?? 'GET';
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        method,
        path,
        headers: {
          ...init.headers,
          ...(init.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(init.body)) }),
        },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        const challenges = res.rawHeaders.filter(
          (_value, index, raw) => index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'www-authenticate',
        );
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, challenges, body }));
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** An answer read as JSON (a body that is not JSON as `{ raw }`), with its challenges. */
export interface JsonAnswer {
  readonly status: number;
  readonly challenges: readonly string[];
  readonly json: Record<string, unknown>;
}

/** {@link rawRequest} with `body` sent as JSON and the answer's body read as JSON. */
export async function jsonRequest(
  base: string,
  method: string,
  target: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<JsonAnswer> {
  const answer = await rawRequest(base, target, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(answer.body) as Record<string, unknown>;
  } catch {
    json = { raw: answer.body };
  }
  return { status: answer.status, challenges: answer.challenges, json };
}
