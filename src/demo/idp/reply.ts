import type { ServerResponse } from 'node:http';
import { sendJson, type JsonReply } from './json-reply.js';

/** An HTML page: the sign-in pages of the authorization endpoint. Development only. */
export interface HtmlReply {
  readonly kind: 'html';
  readonly status: number;
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** A 303 See Other to `location`: how the authorization endpoint answers the client (RFC 6749 section 4.1.2). Development only. */
export interface RedirectReply {
  readonly kind: 'redirect';
  readonly location: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A reply without a body, such as a CORS preflight answer. Development only. */
export interface EmptyReply {
  readonly kind: 'empty';
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** Everything a route of the development identity provider may answer. Development only. */
export type Reply = JsonReply | HtmlReply | RedirectReply | EmptyReply;

/**
 * Writes any reply, with `extraHeaders` (CORS) added. Nothing is cacheable: pages carry one-time state and
 * redirects carry codes. Development only.
 */
export function sendReply(
  response: ServerResponse,
  reply: Reply,
  extraHeaders: Readonly<Record<string, string>> = {},
): void {
  if (!('kind' in reply)) {
    sendJson(response, { ...reply, headers: { ...reply.headers, ...extraHeaders } });
    return;
  }
  switch (reply.kind) {
    case 'html':
      response.writeHead(reply.status, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': Buffer.byteLength(reply.html),
        'cache-control': 'no-store',
        ...reply.headers,
        ...extraHeaders,
      });
      response.end(reply.html);
      return;
    case 'redirect':
      response.writeHead(303, {
        location: reply.location,
        'content-length': 0,
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
        ...reply.headers,
        ...extraHeaders,
      });
      response.end();
      return;
    case 'empty':
      response.writeHead(reply.status, { ...reply.headers, ...extraHeaders });
      response.end();
      return;
  }
}
