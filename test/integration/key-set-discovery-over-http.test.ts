import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys, type KeySetFetchEvent } from '../../src/authn/issuer-keys.js';
import { fetchKeySetOverHttp } from '../../src/authn/read-key-set.js';
import { verifyAccessToken, type VerifyContext } from '../../src/authn/verify-access-token.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { IssuerPolicy } from '../../src/policy/compiled-policy.js';
import { KEY_SERVER_PATHS, startKeyServer, type KeyServer } from '../kit/key-server.js';
import { createManualClock, type ManualClock } from '../kit/manual-clock.js';
import { waitUntil } from '../kit/wait-until.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';

// Discovery against a real HTTP server on 127.0.0.1; the injected-fetch cases are in test/unit/read-key-set-discovery.test.ts.
const ISSUER = 'https://idp.example/';
const AUDIENCE = 'https://my-banking-api';

let signer: TestKey;
let rotated: TestKey;

beforeAll(async () => {
  [signer, rotated] = await Promise.all([generateTestKey('discovered-1'), generateTestKey('discovered-2')]);
});

describe('IssuerKeys and verifyAccessToken through discovery on 127.0.0.1', () => {
  const TTL_MS = 60_000; // jwks_cache_ttl: 60
  const COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10

  let server: KeyServer;
  let clock: ManualClock;
  let events: KeySetFetchEvent[];

  beforeEach(async () => {
    server = await startKeyServer([signer.publicJwk]);
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
    expect(server.paths).toEqual([KEY_SERVER_PATHS.openidConfiguration, KEY_SERVER_PATHS.jwks]);
    expect(events).toEqual([{ issuer: server.issuer, outcome: 'ok', trigger: 'initial', keys: 1 }]);
  });

  it('verifies through an openid_configuration URL whose metadata names the configured issuer', async () => {
    server.serveMetadata({ issuer: ISSUER, jwks_uri: server.url });
    const { context } = trust(
      `openid_configuration: ${server.issuer}${KEY_SERVER_PATHS.oauthAuthorizationServer}`,
      ISSUER,
    );

    expect(await verifyAccessToken(await sign(ISSUER), context)).toMatchObject({
      kind: 'verified',
      token: { issuer: ISSUER },
    });
    expect(server.paths).toEqual([KEY_SERVER_PATHS.oauthAuthorizationServer, KEY_SERVER_PATHS.jwks]);
  });

  it('answers keys_unavailable when discovery fails and no keys are cached', async () => {
    server.behave('http-500', 'metadata');
    const { context } = trust('discovery: true');

    expect(await verifyAccessToken(await sign(), context)).toEqual({
      kind: 'keys_unavailable',
      issuer: server.issuer,
    });
    expect(server.paths).toEqual([KEY_SERVER_PATHS.openidConfiguration]);
    expect(events).toEqual([
      {
        issuer: server.issuer,
        outcome: 'error',
        trigger: 'initial',
        error: `${server.metadataUrl} answered HTTP 500`,
        cause: 'status',
        status: 500,
      },
    ]);
  });

  it('answers keys_unavailable when the metadata names another issuer, never fetching its keys', async () => {
    server.serveMetadata({ issuer: `${server.issuer}/`, jwks_uri: server.url });
    const { context } = trust('discovery: true');

    expect(await verifyAccessToken(await sign(), context)).toEqual({
      kind: 'keys_unavailable',
      issuer: server.issuer,
    });
    expect(server.paths).toEqual([KEY_SERVER_PATHS.openidConfiguration]);
    expect(events[0]?.error).toBe(
      `the discovery document at ${server.metadataUrl} names another issuer than ${server.issuer}`,
    );
  });

  it('answers keys_unavailable when the discovered key set cannot be fetched', async () => {
    server.behave('http-404', 'keys');
    const { context } = trust('discovery: true');

    expect(await verifyAccessToken(await sign(), context)).toEqual({
      kind: 'keys_unavailable',
      issuer: server.issuer,
    });
    expect(server.paths).toEqual([KEY_SERVER_PATHS.openidConfiguration, KEY_SERVER_PATHS.jwks]);
  });

  it('keeps verifying with the cached keys when discovery fails after the cache TTL', async () => {
    const { context } = trust('discovery: true');
    expect((await verifyAccessToken(await sign(), context)).kind).toBe('verified');

    server.behave('http-503');
    clock.advance(TTL_MS);

    // Answered at once with the held keys; the refresh runs in the background and fails.
    expect((await verifyAccessToken(await sign(), context)).kind).toBe('verified');
    await waitUntil(
      () => events.length,
      (count) => count === 2,
      { timeoutMs: 10_000, intervalMs: 10, what: 'the background refresh' },
    );
    expect(events.map((event) => [event.trigger, event.outcome])).toEqual([
      ['initial', 'ok'],
      ['refresh', 'error'],
    ]);
    expect((await verifyAccessToken(await sign(), context)).kind).toBe('verified');
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
