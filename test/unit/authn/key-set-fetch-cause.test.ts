import { describe, expect, it } from 'vitest';
import { KeySetReadError } from '../../../src/authn/key-set-errors.js';
import { classifyKeySetFault } from '../../../src/authn/key-set-fetch-cause.js';

/** An error as Node reports a socket or TLS fault: a message and a `code`. */
const nodeError = (code: string) => Object.assign(new Error(`${code} (injected)`), { code });
/** As Node's fetch (undici) rejects: a TypeError "fetch failed" whose cause is the socket's error. */
const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });

describe('classifyKeySetFault: the cause of a failed key set fetch', () => {
  it.each([
    ['ENOTFOUND', 'dns'],
    ['EAI_AGAIN', 'dns'],
    ['ECONNREFUSED', 'connect'],
    ['ECONNRESET', 'connect'],
    ['EHOSTUNREACH', 'connect'],
    ['ENETUNREACH', 'connect'],
    ['UND_ERR_SOCKET', 'connect'],
    ['ETIMEDOUT', 'timeout'],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout'],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'tls'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls'],
    ['CERT_HAS_EXPIRED', 'tls'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls'],
    ['ENOENT', 'file'],
    ['EACCES', 'file'],
  ])('classifies %s under fetch failed as %s', (code, cause) => {
    expect(classifyKeySetFault(fetchFailed(nodeError(code)))).toEqual({ cause });
    expect(classifyKeySetFault(nodeError(code))).toEqual({ cause }); // and on its own
  });

  it('finds the code of a connection tried on several addresses (an AggregateError with no code)', () => {
    const aggregate = new AggregateError([nodeError('ECONNREFUSED'), nodeError('ECONNREFUSED')], '');
    expect(classifyKeySetFault(fetchFailed(aggregate))).toEqual({ cause: 'connect' });
  });

  it.each([
    [
      new KeySetReadError('ERR_JWKS_STATUS', 'https://idp.example/jwks answered HTTP 500', 500),
      { cause: 'status', status: 500 },
    ],
    [new KeySetReadError('ERR_JWKS_STATUS', 'answered HTTP 404', 404), { cause: 'status', status: 404 }],
    [
      new KeySetReadError('ERR_JWKS_TIMEOUT', 'the key set was not read within 5000 ms'),
      { cause: 'timeout' },
    ],
    [new KeySetReadError('ERR_JWKS_BODY', 'the key set is not valid JSON'), { cause: 'body' }],
    [new KeySetReadError('ERR_JWKS_BODY', 'sent more than 524288 bytes'), { cause: 'body' }],
  ])('classifies our own read errors by their code: %s', (error, expected) => {
    expect(classifyKeySetFault(error)).toEqual(expected);
  });

  it('classifies an abort (the read budget) as timeout', () => {
    expect(classifyKeySetFault(new DOMException('aborted', 'TimeoutError'))).toEqual({ cause: 'timeout' });
    expect(classifyKeySetFault(fetchFailed(new DOMException('aborted', 'AbortError')))).toEqual({
      cause: 'timeout',
    });
  });

  it.each([
    ['an error with no code', new Error('socket hang up')],
    ['an unknown code', nodeError('ESOMETHINGNEW')],
    ['a string', 'boom'],
    ['null', null],
    [
      'a cause chain that loops',
      (() => {
        const looping = new Error('loop') as Error & { cause?: unknown };
        looping.cause = looping;
        return looping;
      })(),
    ],
  ])('says other for %s, and never throws', (_case, error) => {
    expect(classifyKeySetFault(error)).toEqual({ cause: 'other' });
  });
});
