import type { IncomingMessage } from 'node:http';
import { readBoundedBody } from '../../http/read-bounded-body.js';
import { OAuthError } from './oauth-error.js';

/** Development only. 16 KiB: a token request is a few hundred bytes; more is a mistake or an attack. */
export const MAX_BODY_BYTES = 16 * 1024;

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

/** The media type, lower case, without parameters (`charset`); '' when none was sent. Development only. */
export function mediaTypeOf(request: IncomingMessage): string {
  return (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * Reads a request body of at most `MAX_BODY_BYTES` as UTF-8. Development only.
 *
 * @throws OAuthError 413 `invalid_request` when the body is larger; the rest is drained unread so the
 * answer can still be sent on the same connection.
 */
export async function readBody(request: IncomingMessage): Promise<string> {
  const text = await readBoundedBody(request, MAX_BODY_BYTES);
  if (text === undefined) throw tooLarge();
  return text;
}

/**
 * Reads token endpoint parameters from a form (RFC 6749 section 4.3.2) or JSON body (as Auth0 also accepts).
 * JSON values must be strings or numbers (`"max_age": 300`); numbers become their decimal text.
 * Development only.
 *
 * @throws OAuthError 415 for another media type, 413 for a large body, 400 `invalid_request` for a body
 * that does not parse or names a parameter twice (RFC 6749 section 3.2).
 */
export async function readTokenParams(request: IncomingMessage): Promise<ReadonlyMap<string, string>> {
  const mediaType = mediaTypeOf(request);
  if (mediaType !== FORM && mediaType !== JSON_TYPE) {
    request.resume(); // not read, but drained so the connection can carry the answer
    throw new OAuthError(415, 'invalid_request', `send the parameters as ${FORM} or ${JSON_TYPE}`);
  }
  const text = await readBody(request);
  if (mediaType === FORM) return onceEach(new URLSearchParams(text));
  const entries: [string, string][] = [];
  for (const [name, value] of Object.entries(parseJsonObject(text))) {
    if (typeof value === 'string') entries.push([name, value]);
    else if (typeof value === 'number' && Number.isFinite(value)) entries.push([name, String(value)]);
    else throw new OAuthError(400, 'invalid_request', `${name} must be a string`);
  }
  return onceEach(entries);
}

/**
 * Reads the fields of an HTML form post (`application/x-www-form-urlencoded`): the sign-in pages.
 * Development only.
 *
 * @throws OAuthError 415 for another media type, 413 for a large body, 400 `invalid_request` for a field
 * sent twice.
 */
export async function readFormParams(request: IncomingMessage): Promise<ReadonlyMap<string, string>> {
  if (mediaTypeOf(request) !== FORM) {
    request.resume(); // not read, but drained so the connection can carry the answer
    throw new OAuthError(415, 'invalid_request', `send the form as ${FORM}`);
  }
  return onceEach(new URLSearchParams(await readBody(request)));
}

/** The entries as a map; a name sent twice is ambiguous, so refused (RFC 6749 section 3.2). */
function onceEach(entries: Iterable<[string, string]>): Map<string, string> {
  const params = new Map<string, string>();
  for (const [name, value] of entries) {
    if (params.has(name)) throw new OAuthError(400, 'invalid_request', `${name} appears more than once`);
    params.set(name, value);
  }
  return params;
}

/**
 * Parses a body that must be a JSON object. Development only.
 *
 * @throws OAuthError 400 `invalid_request` otherwise.
 */
export function parseJsonObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new OAuthError(400, 'invalid_request', 'the body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new OAuthError(400, 'invalid_request', 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

function tooLarge(): OAuthError {
  return new OAuthError(413, 'invalid_request', `the body is larger than ${MAX_BODY_BYTES / 1024} KiB`);
}
