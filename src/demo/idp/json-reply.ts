import type { ServerResponse } from 'node:http';

/** A JSON response of the development identity provider, built by a handler, written by `sendJson`. Development only. */
export interface JsonReply {
  readonly status: number;
  readonly body: object;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Writes a JSON reply. Every response is `cache-control: no-store` (RFC 6749 section 5.1 requires it of
 * token responses; discovery and keys change on rotation, so nothing here is worth caching). Development only.
 */
export function sendJson(response: ServerResponse, reply: JsonReply): void {
  const text = JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    pragma: 'no-cache', // for HTTP/1.0 caches, as RFC 6749 section 5.1 examples show
    ...reply.headers,
  });
  response.end(text);
}
