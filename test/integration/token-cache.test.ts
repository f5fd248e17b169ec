import { describe, expect, it } from 'vitest';
import { tokenDigest } from '../../src/authn/verified-token-cache.js';
import { createAuthzMetrics, type AuthzMetrics } from '../../src/metrics/authz-metrics.js';
import { AUTHORIZATION_SERVICE } from '../../src/server/authz-server.js';
import { ISSUER, TOKEN_DEFAULTS, type LogSink } from '../kit/authz-harness.js';
import { saveByRename } from '../kit/policy-file-edits.js';
import { bankRoutes, outcomeOf, policyText, startPolicyServer } from '../kit/policy-server.js';
import { cleanupAfterEach } from '../kit/test-hooks.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * The verified-token cache in the production server, over real gRPC on 127.0.0.1, with the real metrics
 * registry and a clock the test moves: hits show in the metrics, and a cached token is still refused once
 * it expires or its key leaves the issuer's key set.
 */

const JWKS_TTL_S = 10; // jwks_cache_ttl: the least allowed, so that a test can move past it
const TOLERANCE_S = 30; // the default clock_tolerance

const defer = cleanupAfterEach();

interface CachingServer {
  /** The issuer's signing key, published in its JWKS. */
  readonly key: TestKey;
  readonly jwks: KeyServer;
  readonly metrics: AuthzMetrics;
  readonly sink: LogSink;
  /** Moves the server's clock forward, in milliseconds. */
  advance(ms: number): void;
  /** The outcome of one GET /balance with this token: `allow`, or `deny <status> <reason>`. */
  balance(token: string): Promise<string>;
  reload(text: string): Promise<void>;
  /** `{issuer: value}` of a token cache metric, read as a scrape would. */
  metric(name: string): Promise<Record<string, number>>;
}

/** The server on a policy with one issuer (jwks_cache_ttl 10 s, plus `settings`) and the bank's routes. */
async function startCachingServer(settings: Record<string, string> = {}): Promise<CachingServer> {
  const key = await generateTestKey(`cache-${Math.random().toString(36).slice(2)}`);
  const jwks = await startKeyServer([key.publicJwk]);
  defer(() => jwks.close());
  let clock = Date.now();
  const { policyFile, sink, metrics, server, health, check, stop } = await startPolicyServer({
    policy: policyText(
      [{ jwksUri: jwks.url, settings: { jwks_cache_ttl: `${JWKS_TTL_S}`, ...settings } }],
      bankRoutes(['view:balance']),
    ),
    tempPrefix: 'authz-token-cache-',
    metrics: createAuthzMetrics(),
    now: () => clock,
    watchPolicy: false,
    awaitStartupFetches: false, // the health wait below
  });
  defer(stop);
  // Keys fetched at start-up, as in production: the first request is then verified under a known key set.
  await waitUntil(
    async () => (await health.check(AUTHORIZATION_SERVICE)).status,
    (status) => status === 'SERVING',
    { timeoutMs: 10_000, what: 'health SERVING' },
  );
  return {
    key,
    jwks,
    metrics,
    sink,
    advance: (ms) => {
      clock += ms;
    },
    balance: async (token) => {
      const { response, id } = await check({
        method: 'GET',
        path: '/balance',
        authorization: `Bearer ${token}`,
      });
      const outcome = outcomeOf(response);
      if (outcome === 'allow') return outcome;
      const line = sink
        .records()
        .find((record) => record['event'] === 'decision' && record['request_id'] === id);
      return `${outcome} ${String(line?.['reason'])}`;
    },
    reload: async (text) => {
      await saveByRename(policyFile, text);
      expect(await server.reload()).toBe('ok');
    },
    metric: async (name) => {
      const metric = (await metrics.registry.getMetricsAsJSON()).find((entry) => entry.name === name);
      return Object.fromEntries(
        (metric?.values ?? []).map((sample) => [String(sample.labels['issuer']), sample.value]),
      );
    },
  };
}

describe('the verified-token cache over real gRPC', () => {
  it('answers a repeated token from the cache, counting hits, misses and entries in the metrics', async () => {
    const authz = await startCachingServer();
    const token = await signTestToken(authz.key, TOKEN_DEFAULTS);

    expect(await authz.balance(token)).toBe('allow');
    expect(await authz.balance(token)).toBe('allow');
    expect(await authz.balance(token)).toBe('allow');

    expect(await authz.metric('authz_token_cache_misses_total')).toEqual({ [ISSUER]: 1 });
    expect(await authz.metric('authz_token_cache_hits_total')).toEqual({ [ISSUER]: 2 });
    expect(await authz.metric('authz_token_cache_entries')).toEqual({ [ISSUER]: 1 });
    const text = await authz.metrics.registry.metrics();
    expect(text).toContain(`authz_token_cache_hits_total{issuer="${ISSUER}"} 2`);
    // Neither the token nor its digest is ever logged.
    for (const line of authz.sink.lines()) {
      expect(line).not.toContain(token);
      expect(line).not.toContain(tokenDigest(token));
    }
  });

  it('refuses a cached token once it expires (401 token_expired), and never serves it from the cache', async () => {
    const authz = await startCachingServer({ jwks_cache_ttl: '1h' });
    const now = Math.floor(Date.now() / 1000);
    const token = await signTestToken(authz.key, TOKEN_DEFAULTS, { now, claims: { exp: now + 60 } });
    expect(await authz.balance(token)).toBe('allow');
    expect(await authz.balance(token)).toBe('allow');
    expect(await authz.metric('authz_token_cache_hits_total')).toEqual({ [ISSUER]: 1 });

    authz.advance((60 + TOLERANCE_S + 1) * 1000);

    expect(await authz.balance(token)).toBe('deny 401 token_expired');
    expect(await authz.balance(token)).toBe('deny 401 token_expired');
    expect(await authz.metric('authz_token_cache_hits_total')).toEqual({ [ISSUER]: 1 });
    expect(await authz.metric('authz_token_cache_entries')).toEqual({ [ISSUER]: 0 });
  });

  it('refuses a cached token once its key is removed from the JWKS and the background refresh has noticed', async () => {
    const authz = await startCachingServer({ jwks_refresh_cooldown: '1s' });
    const token = await signTestToken(authz.key, TOKEN_DEFAULTS);
    expect(await authz.balance(token)).toBe('allow');
    expect(await authz.balance(token)).toBe('allow');

    const successor = await generateTestKey('successor');
    authz.jwks.publish([successor.publicJwk]);
    authz.advance(JWKS_TTL_S * 1000); // past the refresh time: a hit, or the server's timer, starts it

    // Until the refresh has brought the new set, the held keys (and the cached verification) stand.
    await waitUntil(
      () => authz.balance(token),
      (outcome) => outcome !== 'allow',
      { timeoutMs: 10_000, what: 'the refreshed key set to refuse the token' },
    );
    expect(await authz.balance(token)).toBe('deny 401 token_key_unknown');
    expect(await authz.balance(await signTestToken(successor, TOKEN_DEFAULTS))).toBe('allow');
  });

  it('keeps the cache across a reload that changes only routes, and empties it when the issuer changes', async () => {
    const authz = await startCachingServer();
    const token = await signTestToken(authz.key, TOKEN_DEFAULTS);
    expect(await authz.balance(token)).toBe('allow');
    const routesOnly = policyText(
      [{ jwksUri: authz.jwks.url, settings: { jwks_cache_ttl: `${JWKS_TTL_S}` } }],
      [...bankRoutes(['view:balance']), '{ path: /status, public: true }'],
    );

    await authz.reload(routesOnly);
    expect(await authz.balance(token)).toBe('allow');
    expect(await authz.metric('authz_token_cache_hits_total')).toEqual({ [ISSUER]: 1 });

    await authz.reload(routesOnly.replace('algorithms: [RS256]', 'algorithms: [RS256, PS256]'));
    expect(await authz.metric('authz_token_cache_entries')).toEqual({ [ISSUER]: 0 });
    expect(await authz.balance(token)).toBe('allow');
    expect(await authz.metric('authz_token_cache_misses_total')).toEqual({ [ISSUER]: 2 });
  });
});
