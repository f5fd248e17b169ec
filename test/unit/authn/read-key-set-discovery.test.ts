import { beforeAll, describe, expect, it } from 'vitest';
import { KeySetReadError } from '../../../src/authn/key-set-errors.js';
import { KEY_SET_LIMITS, readKeySet, type FetchKeySet } from '../../../src/authn/read-key-set.js';
import type { KeySource } from '../../../src/policy/compiled-policy.js';
import { generateTestKey, type TestKey } from '../../kit/tokens.js';

// Discovery against a real HTTP server on 127.0.0.1 is in test/integration/key-set-discovery-over-http.test.ts.
const ISSUER = 'https://idp.example/';
const METADATA_URL = 'https://idp.example/.well-known/openid-configuration';
/** Providers often publish their keys on another host or path than the issuer's. */
const JWKS_URI = 'https://keys.idp.example/oauth2/v1/keys';

let signer: TestKey;

beforeAll(async () => {
  signer = await generateTestKey('discovered-1');
});

/** The key source `discovery: true` compiles to for ISSUER (see compile-policy-issuers.test.ts). */
function discoverySource(issuer = ISSUER, metadataUrl = METADATA_URL): KeySource {
  return { kind: 'discovery', metadataUrl: new URL(metadataUrl), issuer };
}

/** A scripted HTTP side: a body (JSON-encoded unless a string) or a Response per URL; records each call. */
function scriptedFetch(answers: Record<string, unknown>) {
  const urls: string[] = [];
  const signals: AbortSignal[] = [];
  const fetch: FetchKeySet = async (url, init) => {
    urls.push(url.href);
    signals.push(init.signal);
    if (!(url.href in answers)) throw new Error(`unexpected fetch of ${url.href}`);
    const answer = answers[url.href];
    if (answer instanceof Response) return answer;
    return new Response(typeof answer === 'string' ? answer : JSON.stringify(answer), {
      headers: { 'content-type': 'application/json' },
    });
  };
  return { fetch, urls, signals };
}

const metadata = (members: Record<string, unknown> = {}) => ({
  issuer: ISSUER,
  jwks_uri: JWKS_URI,
  ...members,
});

describe('readKeySet through OpenID Connect discovery (injected fetch)', () => {
  it('reads the metadata, then the key set its jwks_uri names, in that order', async () => {
    const http = scriptedFetch({ [METADATA_URL]: metadata(), [JWKS_URI]: { keys: [signer.publicJwk] } });

    expect(await readKeySet(discoverySource(), http.fetch)).toEqual({ keys: [signer.publicJwk] });
    expect(http.urls).toEqual([METADATA_URL, JWKS_URI]);
  });

  it('bounds both fetches with one abort signal: one time budget for the whole read', async () => {
    const http = scriptedFetch({ [METADATA_URL]: metadata(), [JWKS_URI]: { keys: [] } });

    await readKeySet(discoverySource(), http.fetch);

    // How the budget is spent across the two requests: read-key-set-budget.test.ts.
    expect(http.signals).toHaveLength(2);
    expect(http.signals[0]).toBeInstanceOf(AbortSignal);
    expect(http.signals[1]).toBe(http.signals[0]);
    expect(http.signals[0]?.aborted).toBe(false);
  });

  it('accepts a jwks_uri over http on a loopback address', async () => {
    const local = 'http://127.0.0.1:9000/jwks.json';
    const http = scriptedFetch({ [METADATA_URL]: metadata({ jwks_uri: local }), [local]: { keys: [] } });

    expect(await readKeySet(discoverySource(), http.fetch)).toEqual({ keys: [] });
    expect(http.urls).toEqual([METADATA_URL, local]);
  });

  // OpenID Connect Discovery 1.0 section 4.3: the issuer in the metadata must be identical to the one the
  // metadata was looked up for, character for character.
  it.each<[string, string, unknown]>([
    ['one trailing slash more', 'https://idp.example', 'https://idp.example/'],
    ['one trailing slash less', 'https://idp.example/', 'https://idp.example'],
    ['another issuer', ISSUER, 'https://evil.example/'],
    ['another case', ISSUER, 'https://IDP.example/'],
    ['no issuer at all', ISSUER, undefined],
    ['an issuer that is not a string', ISSUER, ['https://idp.example/']],
  ])('refuses metadata naming %s, and fetches no key set', async (_case, configured, published) => {
    const http = scriptedFetch({
      [METADATA_URL]: { issuer: published, jwks_uri: JWKS_URI },
      [JWKS_URI]: { keys: [signer.publicJwk] },
    });

    await expect(readKeySet(discoverySource(configured), http.fetch)).rejects.toThrow(
      new KeySetReadError(
        'ERR_JWKS_BODY',
        `the discovery document at ${METADATA_URL} names another issuer than ${configured}`,
      ),
    );
    expect(http.urls).toEqual([METADATA_URL]);
  });

  it.each([
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['a JSON string', '"https://idp.example/"'],
  ])('refuses metadata that is %s: it names no issuer', async (_case, body) => {
    const http = scriptedFetch({ [METADATA_URL]: body });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(
      `the discovery document at ${METADATA_URL} names another issuer than ${ISSUER}`,
    );
  });

  it.each([
    ['no jwks_uri', { jwks_uri: undefined }],
    ['a jwks_uri that is null', { jwks_uri: null }],
    ['a jwks_uri that is a list', { jwks_uri: [JWKS_URI] }],
  ])('refuses metadata with %s', async (_case, members) => {
    const http = scriptedFetch({ [METADATA_URL]: metadata(members) });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(
      new KeySetReadError('ERR_JWKS_BODY', 'the discovery document has no jwks_uri'),
    );
    expect(http.urls).toEqual([METADATA_URL]);
  });

  // The https-or-loopback rule of jwks_uri in the policy holds for the one metadata names, too.
  it.each([
    [
      'http to a remote host',
      'http://keys.idp.example/jwks.json',
      'must be an https URL (http is accepted only for a loopback host such as 127.0.0.1)',
    ],
    ['http to a private address', 'http://10.0.0.7/jwks.json', 'must be an https URL'],
    ['a relative reference', '/jwks.json', '"/jwks.json" is not an absolute URL'],
    ['credentials', 'https://user:secret@keys.idp.example/jwks.json', 'must not carry credentials'],
    ['a fragment', 'https://keys.idp.example/jwks.json#k', 'must not have a fragment'],
  ])('refuses a jwks_uri with %s, and never fetches it', async (_case, jwksUri, problem) => {
    const http = scriptedFetch({ [METADATA_URL]: metadata({ jwks_uri: jwksUri }) });

    const error: unknown = await readKeySet(discoverySource(), http.fetch).catch((thrown: unknown) => thrown);

    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^the discovery document's jwks_uri /);
    expect((error as Error).message).toContain(problem);
    expect(http.urls).toEqual([METADATA_URL]);
  });

  it.each([
    ['HTML', '<!doctype html><title>Sign in</title>'],
    ['truncated JSON', '{"issuer": "https://idp.example/", "jwks_uri": '],
    ['empty', ''],
  ])('refuses metadata that is %s, not JSON', async (_case, body) => {
    const http = scriptedFetch({ [METADATA_URL]: body });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(
      new KeySetReadError('ERR_JWKS_BODY', 'the discovery document is not valid JSON'),
    );
    expect(http.urls).toEqual([METADATA_URL]);
  });

  it('refuses metadata over 512 KiB, cutting the body off', async () => {
    const padding = 'x'.repeat(KEY_SET_LIMITS.maxBytes);
    const http = scriptedFetch({ [METADATA_URL]: metadata({ service_documentation: padding }) });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(
      new KeySetReadError('ERR_JWKS_BODY', `${METADATA_URL} sent more than 524288 bytes`),
    );
    expect(http.urls).toEqual([METADATA_URL]);
  });

  it('refuses metadata declaring a content-length over 512 KiB', async () => {
    const response = new Response(JSON.stringify(metadata()), {
      headers: { 'content-length': String(KEY_SET_LIMITS.maxBytes + 1) },
    });
    const http = scriptedFetch({ [METADATA_URL]: response });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(
      `${METADATA_URL} sent more than 524288 bytes`,
    );
  });

  it.each([404, 500, 302])('refuses a metadata answer of HTTP %i', async (status) => {
    const http = scriptedFetch({ [METADATA_URL]: new Response(null, { status }) });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(
      new KeySetReadError('ERR_JWKS_STATUS', `${METADATA_URL} answered HTTP ${status}`, status),
    );
    expect(http.urls).toEqual([METADATA_URL]);
  });

  it.each<[string, unknown, KeySetReadError]>([
    ['not JSON', 'not json', new KeySetReadError('ERR_JWKS_BODY', 'the key set is not valid JSON')],
    [
      'without keys',
      { issuer: ISSUER },
      new KeySetReadError('ERR_JWKS_BODY', 'the key set has no "keys" array'),
    ],
    [
      'HTTP 503',
      new Response(null, { status: 503 }),
      new KeySetReadError('ERR_JWKS_STATUS', `${JWKS_URI} answered HTTP 503`, 503),
    ],
  ])('checks the discovered key set like any other: refuses one %s', async (_case, answer, expected) => {
    const http = scriptedFetch({ [METADATA_URL]: metadata(), [JWKS_URI]: answer });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(expected);
  });
});
