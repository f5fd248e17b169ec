import { readFile, stat } from 'node:fs/promises';
import type { KeySource } from '../policy/compiled-policy.js';
import { fetchableUrlProblem } from '../policy/fetchable-url.js';
import { KeySetReadError } from './key-set-errors.js';

/** Bounds on reading a key set, so that a broken or hostile issuer cannot exhaust this process. */
export const KEY_SET_LIMITS = Object.freeze({
  maxBytes: 512 * 1024, // 512 KiB: real key sets are a few KiB
  maxKeys: 100, // keys in one set
  timeoutMs: 5000, // 5 seconds for the whole read, body included; discovery's two requests share it
});

/** How key sets and discovery documents are fetched over HTTP; injectable so tests never touch the network. */
export type FetchKeySet = (url: URL, init: { signal: AbortSignal }) => Promise<Response>;

/**
 * Reads a JSON Web Key Set (RFC 7517 section 5) from its source and checks its outer shape. Each key is
 * checked by `checkKeySet` (key-set-check.ts).
 *
 * @throws KeySetReadError (timeout, HTTP status, body) or the fetch's own error (DNS, connection, TLS), each
 *   with a message fit for logs (never key material; URLs never carry credentials: fetchable-url.ts).
 */
export async function readKeySet(source: KeySource, fetchKeySet: FetchKeySet): Promise<{ keys: unknown[] }> {
  // One time budget for the whole read: with discovery, the metadata and the key set together. It holds
  // even if a fetch ignores the signal, so that a fetch under way always ends (and the next may start).
  const signal = AbortSignal.timeout(KEY_SET_LIMITS.timeoutMs);
  const text = await new Promise<string>((resolve, reject) => {
    const onAbort = () =>
      reject(
        new KeySetReadError(
          'ERR_JWKS_TIMEOUT',
          `the key set was not read within ${KEY_SET_LIMITS.timeoutMs} ms`,
        ),
      );
    signal.addEventListener('abort', onAbort, { once: true });
    readText(source, fetchKeySet, signal)
      .then(resolve, reject)
      .finally(() => {
        signal.removeEventListener('abort', onAbort);
      });
  });
  const parsed = parseJson(text, 'the key set');
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new KeySetReadError('ERR_JWKS_BODY', 'the key set has no "keys" array');
  if (keys.length > KEY_SET_LIMITS.maxKeys)
    throw new KeySetReadError('ERR_JWKS_BODY', `the key set has more than ${KEY_SET_LIMITS.maxKeys} keys`);
  return { keys };
}

async function readText(source: KeySource, fetchKeySet: FetchKeySet, signal: AbortSignal): Promise<string> {
  if (source.kind === 'file') return readKeySetFile(source.path);
  if (source.kind === 'uri') return fetchText(source.uri, fetchKeySet, signal);
  const jwksUri = await discoverJwksUri(source.metadataUrl, source.issuer, fetchKeySet, signal);
  return fetchText(jwksUri, fetchKeySet, signal);
}

/**
 * Reads the issuer's discovery metadata (OpenID Connect Discovery 1.0 section 4, RFC 8414 section 3) for its
 * `jwks_uri`. The metadata's `issuer` must equal the configured issuer exactly (section 4.3): otherwise a
 * document served at the right place could vouch for keys of another issuer.
 */
async function discoverJwksUri(
  metadataUrl: URL,
  issuer: string,
  fetchKeySet: FetchKeySet,
  signal: AbortSignal,
): Promise<URL> {
  const metadata = parseJson(await fetchText(metadataUrl, fetchKeySet, signal), 'the discovery document') as {
    issuer?: unknown;
    jwks_uri?: unknown;
  } | null;
  if (metadata?.issuer !== issuer) {
    throw new KeySetReadError(
      'ERR_JWKS_BODY',
      `the discovery document at ${metadataUrl.href} names another issuer than ${issuer}`,
    );
  }
  if (typeof metadata.jwks_uri !== 'string') {
    throw new KeySetReadError('ERR_JWKS_BODY', 'the discovery document has no jwks_uri');
  }
  const problem = fetchableUrlProblem(metadata.jwks_uri);
  if (problem !== undefined) {
    throw new KeySetReadError('ERR_JWKS_BODY', `the discovery document's jwks_uri ${problem}`);
  }
  return new URL(metadata.jwks_uri);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new KeySetReadError('ERR_JWKS_BODY', `${what} is not valid JSON`);
  }
}

async function readKeySetFile(path: string): Promise<string> {
  const info = await stat(path);
  if (!info.isFile()) throw new Error(`${path} is not a file`);
  if (info.size > KEY_SET_LIMITS.maxBytes)
    throw new KeySetReadError('ERR_JWKS_BODY', `${path} is larger than ${KEY_SET_LIMITS.maxBytes} bytes`);
  return readFile(path, 'utf8');
}

async function fetchText(uri: URL, fetchKeySet: FetchKeySet, signal: AbortSignal): Promise<string> {
  const response = await fetchKeySet(uri, { signal });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new KeySetReadError(
      'ERR_JWKS_STATUS',
      `${uri.href} answered HTTP ${response.status}`,
      response.status,
    );
  }
  return readBoundedText(response, uri);
}

/**
 * A response body as UTF-8 text, read incrementally so that an endless or oversized body is cut off (an
 * error naming `url`) past `KEY_SET_LIMITS.maxBytes`, never buffered whole.
 */
export async function readBoundedText(response: Response, url: URL): Promise<string> {
  const maxBytes = KEY_SET_LIMITS.maxBytes;
  const tooLarge = () => new KeySetReadError('ERR_JWKS_BODY', `${url.href} sent more than ${maxBytes} bytes`);
  if (Number(response.headers.get('content-length') ?? '0') > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The default HTTP fetch: no redirects (a key set that moves is a configuration change), JSON only. */
export const fetchKeySetOverHttp: FetchKeySet = (url, { signal }) =>
  fetch(url, {
    signal,
    redirect: 'error',
    headers: { accept: 'application/json, application/jwk-set+json' },
  });
