import { KeySetReadError } from './key-set-errors.js';

/**
 * Why a key set could not be obtained, in words an operator acts on: `dns` (the name does not resolve),
 * `connect` (no connection, or it broke), `tls` (the certificate or handshake was refused), `status` (an
 * HTTP status other than 200), `timeout` (no complete answer in time), `body` (not JSON, not a key set,
 * too large, no usable key), `file` (a `jwks_file` cannot be read), `other` (none of these).
 */
export type KeySetFetchCause = 'dns' | 'connect' | 'tls' | 'status' | 'timeout' | 'body' | 'file' | 'other';

export interface ClassifiedKeySetFault {
  readonly cause: KeySetFetchCause;
  /** The HTTP status, for `status`. */
  readonly status?: number;
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EPIPE',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ABORT_ERR',
]);
const FILE_CODES = new Set(['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM', 'ELOOP']);
/** OpenSSL's certificate verification codes Node reports as is (the rest start with ERR_TLS_ / ERR_SSL_). */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** How deep the `cause` chain is followed (fetch wraps the socket's error in a TypeError "fetch failed"). */
const MAX_CAUSE_DEPTH = 5;

/**
 * Classifies the error a key set read produced: our own typed errors by their code, Node's and undici's
 * by theirs, anywhere in the `cause` chain (outermost first). Pure; never throws.
 */
export function classifyKeySetFault(error: unknown): ClassifiedKeySetFault {
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && typeof current === 'object' && current !== null; depth++) {
    const found = classifyOne(current);
    if (found !== undefined) return found;
    current = (current as { cause?: unknown }).cause;
  }
  return { cause: 'other' };
}

function classifyOne(error: object): ClassifiedKeySetFault | undefined {
  if (error instanceof KeySetReadError) {
    if (error.code === 'ERR_JWKS_TIMEOUT') return { cause: 'timeout' };
    if (error.code === 'ERR_JWKS_BODY') return { cause: 'body' };
    return error.status === undefined ? { cause: 'status' } : { cause: 'status', status: error.status };
  }
  const name = (error as { name?: unknown }).name;
  if (name === 'TimeoutError' || name === 'AbortError') return { cause: 'timeout' };
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') {
    // An AggregateError (a connection tried on several addresses) has its attempts' errors, not a code.
    const first: unknown = (error as { errors?: unknown }).errors;
    return Array.isArray(first) && typeof first[0] === 'object' && first[0] !== null
      ? classifyOne(first[0] as object)
      : undefined;
  }
  if (DNS_CODES.has(code)) return { cause: 'dns' };
  if (CONNECT_CODES.has(code)) return { cause: 'connect' };
  if (TIMEOUT_CODES.has(code)) return { cause: 'timeout' };
  if (FILE_CODES.has(code)) return { cause: 'file' };
  if (TLS_CODES.has(code) || /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_)/.test(code) || code.startsWith('CERT_')) {
    return { cause: 'tls' };
  }
  return undefined;
}
