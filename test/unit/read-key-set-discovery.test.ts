import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys, type KeySetFetchEvent } from '../../src/authn/issuer-keys.js';
import {
  fetchKeySetOverHttp,
  KEY_SET_LIMITS,
  readKeySet,
  type FetchKeySet,
} from '../../src/authn/read-key-set.js';
import { verifyAccessToken, type VerifyContext } from '../../src/authn/verify-access-token.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { IssuerPolicy, KeySource } from '../../src/policy/compiled-policy.js';
import { DISCOVERY_PATHS, startDiscoveryServer, type DiscoveryServer } from '../support/discovery-server.js';
import { createManualClock, type ManualClock } from '../support/manual-clock.js';
import { generateTestKey, signTestToken, type TestKey } from '../support/test-issuer.js';

const ISSUER = 'https://idp.example/';
const METADATA_URL = 'https://idp.example/.well-known/openid-configuration';
/** Providers often publish their keys on another host or path than the issuer's. */
const JWKS_URI = 'https://keys.idp.example/oauth2/v1/keys';
const AUDIENCE = 'https://my-banking-api';

let signer: TestKey;
let rotated: TestKey;

beforeAll(async () => {
  [signer, rotated] = await Promise.all([generateTestKey('discovered-1'), generateTestKey('discovered-2')]);
});

/** The key source `discovery: true` compiles to for ISSUER (see compile-policy.test.ts). */
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

  it('bounds each of the two fetches with its own abort signal', async () => {
    const http = scriptedFetch({ [METADATA_URL]: metadata(), [JWKS_URI]: { keys: [] } });

    await readKeySet(discoverySource(), http.fetch);

    expect(http.signals).toHaveLength(2);
    expect(http.signals.every((signal) => signal instanceof AbortSignal && !signal.aborted)).toBe(true);
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
      new Error(`the discovery document at ${METADATA_URL} names another issuer than ${configured}`),
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
      new Error('the discovery document has no jwks_uri'),
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
      new Error('the discovery document is not valid JSON'),
    );
    expect(http.urls).toEqual([METADATA_URL]);
  });

  it('refuses metadata over 512 KiB, cutting the body off', async () => {
    const padding = 'x'.repeat(KEY_SET_LIMITS.maxBytes);
    const http = scriptedFetch({ [METADATA_URL]: metadata({ service_documentation: padding }) });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(
      new Error(`${METADATA_URL} sent more than 524288 bytes`),
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
      new Error(`${METADATA_URL} answered HTTP ${status}`),
    );
    expect(http.urls).toEqual([METADATA_URL]);
  });

  it.each<[string, unknown, string]>([
    ['not JSON', 'not json', 'the key set is not valid JSON'],
    ['without keys', { issuer: ISSUER }, 'the key set has no "keys" array'],
    ['HTTP 503', new Response(null, { status: 503 }), `${JWKS_URI} answered HTTP 503`],
  ])('checks the discovered key set like any other: refuses one %s', async (_case, answer, message) => {
    const http = scriptedFetch({ [METADATA_URL]: metadata(), [JWKS_URI]: answer });

    await expect(readKeySet(discoverySource(), http.fetch)).rejects.toThrow(new Error(message));
  });
});

describe('IssuerKeys and verifyAccessToken through discovery on 127.0.0.1', () => {
  const TTL_MS = 60_000; // jwks_cache_ttl: 60
  const COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10

  let server: DiscoveryServer;
  let clock: ManualClock;
  let events: KeySetFetchEvent[];

  beforeEach(async () => {
    server = await startDiscoveryServer([signer.publicJwk]);
    clock = createManualClock();
    events = [];
  });

  afterEach(async () => {
    await server.close();
  });

  /** A policy trusting `issuer` (default: the server's) with keys from `keySource`, e.g. `discovery: true`. */
  function trust(
    keySource: string,
    issuer = server.issuer,
  ): { issuer: IssuerPolicy; context: VerifyContext } {
    const text = [
      'version: 1',
      'realm: bank-api',
      'issuers:',
      `  - issuer: '${issuer}'`,
      `    audiences: [${AUDIENCE}]`,
      `    ${keySource}`,
      '    algorithms: [RS256]',
      `    jwks_cache_ttl: ${TTL_MS / 1000}`,
      `    jwks_refresh_cooldown: ${COOLDOWN_MS / 1000}`,
      'routes: []',
      '',
    ].join('\n');
    const policy = compilePolicy(text, 'policy.yaml');
    const trusted = policy.issuers.get(issuer)!;
    const keys = new IssuerKeys({
      issuer: trusted,
      fetchKeySet: fetchKeySetOverHttp,
      now: clock.now,
      onFetch: (event) => events.push(event),
    });
    return {
      issuer: trusted,
      context: { policy, keysFor: (name) => (name === issuer ? keys : undefined), now: clock.now },
    };
  }

  function sign(issuer = server.issuer, key = signer): Promise<string> {
    return signTestToken(key, { issuer, audience: AUDIENCE }, { now: clock.seconds() });
  }

  it('verifies a token with keys found through discovery: true, reading the metadata first', async () => {
    const { context } = trust('discovery: true');

    expect(await verifyAccessToken(await sign(), context)).toMatchObject({
      kind: 'verified',
      token: { issuer: server.issuer, subject: 'alice' },
    });
    expect(server.paths).toEqual([DISCOVERY_PATHS.openidConfiguration, DISCOVERY_PATHS.jwks]);
    expect(events).toEqual([{ issuer: server.issuer, outcome: 'ok', trigger: 'initial', keys: 1 }]);
  });

  it('verifies through an openid_configuration URL whose metadata names the configured issuer', async () => {
    server.serveMetadata({ issuer: ISSUER, jwks_uri: server.jwksUri });
    const { context } = trust(
      `openid_configuration: ${server.issuer}${DISCOVERY_PATHS.oauthAuthorizationServer}`,
      ISSUER,
    );

    expect(await verifyAccessToken(await sign(ISSUER), context)).toMatchObject({
      kind: 'verified',
      token: { issuer: ISSUER },
    });
    expect(server.paths).toEqual([DISCOVERY_PATHS.oauthAuthorizationServer, DISCOVERY_PATHS.jwks]);
  });

  it('answers keys_unavailable when discovery fails and no keys are cached', async () => {
    server.failWith(500, 'metadata');
    const { context } = trust('discovery: true');

    expect(await verifyAccessToken(await sign(), context)).toEqual({
      kind: 'keys_unavailable',
      issuer: server.issuer,
    });
    expect(server.paths).toEqual([DISCOVERY_PATHS.openidConfiguration]);
    expect(events).toEqual([
      {
        issuer: server.issuer,
        outcome: 'error',
        trigger: 'initial',
        error: `${server.metadataUrl} answered HTTP 500`,
      },
    ]);
  });

  it('answers keys_unavailable when the metadata names another issuer, never fetching its keys', async () => {
    server.serveMetadata({ issuer: `${server.issuer}/`, jwks_uri: server.jwksUri });
    const { context } = trust('discovery: true');

    expect(await verifyAccessToken(await sign(), context)).toEqual({
      kind: 'keys_unavailable',
      issuer: server.issuer,
    });
    expect(server.paths).toEqual([DISCOVERY_PATHS.openidConfiguration]);
    expect(events[0]?.error).toBe(
      `the discovery document at ${server.metadataUrl} names another issuer than ${server.issuer}`,
    );
  });

  it('answers keys_unavailable when the discovered key set cannot be fetched', async () => {
    server.failWith(404, 'keys');
    const { context } = trust('discovery: true');

    expect(await verifyAccessToken(await sign(), context)).toEqual({
      kind: 'keys_unavailable',
      issuer: server.issuer,
    });
    expect(server.paths).toEqual([DISCOVERY_PATHS.openidConfiguration, DISCOVERY_PATHS.jwks]);
  });

  it('keeps verifying with the cached keys when discovery fails after the cache TTL', async () => {
    const { context } = trust('discovery: true');
    expect((await verifyAccessToken(await sign(), context)).kind).toBe('verified');

    server.failWith(503);
    clock.advance(TTL_MS);

    expect((await verifyAccessToken(await sign(), context)).kind).toBe('verified');
    expect(events.map((event) => [event.trigger, event.outcome])).toEqual([
      ['initial', 'ok'],
      ['expired', 'error'],
    ]);
  });

  it('finds a rotated key through discovery once the cooldown allows a refetch', async () => {
    const { context } = trust('discovery: true');
    expect((await verifyAccessToken(await sign(), context)).kind).toBe('verified');

    server.publish([signer.publicJwk, rotated.publicJwk]);
    clock.advance(COOLDOWN_MS);

    expect((await verifyAccessToken(await sign(server.issuer, rotated), context)).kind).toBe('verified');
    expect(events.map((event) => event.trigger)).toEqual(['initial', 'unknown_key']);
  });
});
