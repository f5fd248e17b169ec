import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeyRing, type KeyRing } from '../../../src/authn/key-ring.js';
import {
  tokenDigest,
  VerifiedTokenCache,
  type TokenCacheEvent,
} from '../../../src/authn/verified-token-cache.js';
import { verifyAccessToken } from '../../../src/authn/verify-access-token.js';
import { authorize } from '../../../src/authz/authorize.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../../../src/policy/compiled-policy.js';
import { DEMO_AUDIENCE, DEMO_ISSUER, demoPolicyText } from '../../kit/inline-policy.js';
import { createKeySetFetch, recordWaits, settle, type FakeKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';
import {
  generateTestKey,
  signTestToken,
  tamperWithPayload,
  type TestKey,
  type TokenOptions,
} from '../../kit/tokens.js';

const TOLERANCE_S = 30; // clock_tolerance
/** When the background refresh of the keys starts after a fetch: 75 % of jwks_cache_ttl (60 s), random() = 0. */
const JWKS_REFRESH_AT_MS = 45_000;
const JWKS_COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10

/** The issuer settings every policy here starts from; a test overrides some. */
const BASE_SETTINGS: Readonly<Record<string, string | number>> = {
  clock_tolerance: TOLERANCE_S,
  jwks_cache_ttl: 60,
  jwks_refresh_cooldown: JWKS_COOLDOWN_MS / 1000,
  token_cache: '{ max_entries: 100, ttl: 1h }', // longer than the tokens, unless a test says otherwise
};
const ROUTES = [
  '{ methods: [GET], path: /balance, scopes: [view:balance] }',
  '{ methods: [POST], path: /transfer, scopes: [transfer:funds], authentication: { max_age: 10m } }',
];

function policyWith(
  settings: Readonly<Record<string, string | number>> = {},
  routes: readonly string[] = ROUTES,
): CompiledPolicy {
  return compilePolicy(
    demoPolicyText(routes, { issuerSettings: { ...BASE_SETTINGS, ...settings } }),
    'policy.yaml',
  );
}

let signer: TestKey; // published
let other: TestKey; // published too, until a test removes it

beforeAll(async () => {
  [signer, other] = await Promise.all([generateTestKey('key-1'), generateTestKey('key-2')]);
});

let clock: ManualClock;
let fetch: FakeKeySetFetch;
let events: [string, TokenCacheEvent][];
/** Every wait of a request for a key-set fetch; the waits end with the fetch, and run no timer. */
let waits: ReturnType<typeof recordWaits>;

beforeEach(() => {
  clock = createManualClock();
  fetch = createKeySetFetch([signer.publicJwk, other.publicJwk]);
  events = [];
  waits = recordWaits('until_done');
});

/**
 * A key ring as the server builds it; keys fetched first, as the server does at start-up. The refresh
 * jitter is 0: the background refresh is due at JWKS_REFRESH_AT_MS after a fetch.
 */
async function ringFor(policy: CompiledPolicy, previous?: KeyRing): Promise<KeyRing> {
  const ring = createKeyRing(
    policy,
    {
      fetchKeySet: fetch.fetch,
      now: clock.now,
      random: () => 0,
      waitAtMost: waits.waitAtMost,
      onTokenCacheEvent: (issuer, event) => events.push([issuer, event]),
    },
    previous,
  );
  await ring.prefetch();
  return ring;
}

/** A verifier over one key ring, as `bearerTokenVerifier` is built by the server. */
function verifierFor(policy: CompiledPolicy, ring: KeyRing) {
  const context = {
    policy,
    keysFor: (issuer: string) => ring.keysFor(issuer),
    now: clock.now,
    tokenCaches: ring.tokenCaches,
  };
  return (token: string) => verifyAccessToken(token, context);
}

function sign(options: Omit<TokenOptions, 'now'> = {}, key: TestKey = signer): Promise<string> {
  return signTestToken(
    key,
    { issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE },
    { now: clock.seconds(), ...options },
  );
}

/** The cache events since the last call, without the issuer (always the demo issuer here). */
function takeEvents(): TokenCacheEvent[] {
  for (const [issuer] of events) expect(issuer).toBe(DEMO_ISSUER);
  const taken = events.map(([, event]) => event);
  events = [];
  return taken;
}

function cacheOf(ring: KeyRing): VerifiedTokenCache {
  const cache = ring.tokenCaches.forIssuer(DEMO_ISSUER);
  if (cache === undefined) throw new Error('the issuer has no token cache');
  return cache;
}

describe('verified-token cache: hits and misses', () => {
  it('verifies a token in full the first time and answers it from the cache after that', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign();

    const first = await verify(token);
    const second = await verify(token);
    const third = await verify(token);

    expect(first).toMatchObject({ kind: 'verified', token: { subject: 'alice', issuer: DEMO_ISSUER } });
    expect(second).toEqual(first);
    expect(third).toBe(second); // the one remembered verification, handed out again
    expect(takeEvents()).toEqual(['miss', 'hit', 'hit']);
    expect(cacheOf(ring).size).toBe(1);
  });

  it('never remembers a refused token: each presentation is verified (and refused) in full', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const forged = tamperWithPayload(await sign());

    expect(await verify(forged)).toMatchObject({ kind: 'invalid', reason: 'token_signature_invalid' });
    expect(await verify(forged)).toMatchObject({ kind: 'invalid', reason: 'token_signature_invalid' });
    expect(takeEvents()).toEqual(['miss', 'miss']);
    expect(cacheOf(ring).size).toBe(0);
  });

  it('keeps each token apart: a second token of the same user is a miss, with its own claims', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const viewer = await sign({ claims: { scope: 'view:balance' } });
    const mover = await sign({ claims: { scope: 'view:balance transfer:funds' } });

    await verify(viewer);
    const moved = await verify(mover);
    const viewedAgain = await verify(viewer);

    expect(moved).toMatchObject({ token: { scopes: new Set(['view:balance', 'transfer:funds']) } });
    expect(viewedAgain).toMatchObject({ token: { scopes: new Set(['view:balance']) } });
    expect(takeEvents()).toEqual(['miss', 'miss', 'hit']);
  });

  it('still refuses an oversized token before any lookup', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);

    expect(await verifierFor(policy, ring)('x'.repeat(9000))).toMatchObject({ reason: 'token_too_large' });
    expect(takeEvents()).toEqual([]);
  });

  it('is off with max_entries: 0: every token is verified in full and nothing is counted', async () => {
    const policy = policyWith({ token_cache: '{ max_entries: 0 }' });
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign();

    expect((await verify(token)).kind).toBe('verified');
    expect((await verify(token)).kind).toBe('verified');
    expect(ring.tokenCaches.enabled).toBe(false);
    expect(ring.tokenCaches.forIssuer(DEMO_ISSUER)).toBeUndefined();
    expect(takeEvents()).toEqual([]);
  });

  it('shares equal scope and amr sets between entries, never unequal ones', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const [alice, bob, carol] = [
      await sign({ claims: { sub: 'alice', scope: 'view:balance transfer:funds' } }),
      await sign({ claims: { sub: 'bob', scope: 'view:balance transfer:funds' } }),
      await sign({ claims: { sub: 'carol', scope: 'view:balance', amr: ['pwd', 'mfa'] } }),
    ];
    for (const token of [alice, bob, carol]) await verify(token);

    const [a, b, c] = [await verify(alice!), await verify(bob!), await verify(carol!)].map((v) =>
      v.kind === 'verified' ? v.token : undefined,
    );
    expect(a?.subject).toBe('alice');
    expect(b?.subject).toBe('bob');
    expect(a?.scopes).toBe(b?.scopes);
    expect(c?.scopes).toEqual(new Set(['view:balance']));
    expect(c?.amr).toEqual(new Set(['pwd', 'mfa']));
    expect(a?.amr).toEqual(new Set());
  });

  it('keeps only the SHA-256 digest of a token, never the token itself', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const tokens = [await sign(), await sign({ claims: { sub: 'bob' } })];
    for (const token of tokens) await verify(token);

    // As many entries as tokens, each found by the token's digest and none by the token: the keys are the digests.
    const cache = cacheOf(ring);
    expect(cache.size).toBe(tokens.length);
    for (const token of tokens) {
      const digest = tokenDigest(token);
      expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
      expect(token).not.toContain(digest);
      expect(cache.find(digest)).toBeDefined();
      expect(cache.find(token)).toBeUndefined();
    }
  });
});

describe('verified-token cache: time', () => {
  it('refuses a cached token once exp + clock_tolerance has passed, with token_expired, never from the cache', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign({ claims: { exp: clock.seconds() + 600 } });
    await verify(token);
    takeEvents();

    clock.advance((600 + TOLERANCE_S - 1) * 1000); // one second of leeway left
    // The key set is due for a refresh by now: the hit starts it in the background, and the set it brings
    // (unchanged) keeps the cache.
    expect((await verify(token)).kind).toBe('verified');
    await settle();
    expect((await verify(token)).kind).toBe('verified');
    expect(fetch.calls).toBe(2);
    expect(takeEvents()).toEqual(['hit', 'hit']);

    clock.advance(1000);
    expect(await verify(token)).toEqual({
      kind: 'invalid',
      reason: 'token_expired',
      description: 'the token has expired',
    });
    expect(await verify(token)).toMatchObject({ reason: 'token_expired' });
    expect(takeEvents()).toEqual(['miss', 'miss']);
    expect(cacheOf(ring).size).toBe(0);
  });

  it('rechecks nbf on every use: after the clock is stepped back, a cached token is not valid yet', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign({ claims: { nbf: clock.seconds() } });
    await verify(token);
    expect((await verify(token)).kind).toBe('verified');
    takeEvents();

    clock.advance(-(TOLERANCE_S + 1) * 1000);

    expect(await verify(token)).toMatchObject({ kind: 'invalid', reason: 'token_not_yet_valid' });
    expect(takeEvents()).toEqual(['miss']);
  });

  it('reuses a verification for at most the configured ttl, then verifies the token in full again', async () => {
    const policy = policyWith({ token_cache: '{ max_entries: 100, ttl: 20s }' });
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign();
    await verify(token);
    takeEvents();

    clock.advance(19_999);
    expect((await verify(token)).kind).toBe('verified');
    expect(takeEvents()).toEqual(['hit']);

    clock.advance(1);
    expect((await verify(token)).kind).toBe('verified');
    expect((await verify(token)).kind).toBe('verified');
    expect(takeEvents()).toEqual(['miss', 'hit']);
  });

  it('refuses a cached token whose login has grown too old for a max_age route: insufficient_user_authentication', async () => {
    const policy = policyWith({ jwks_cache_ttl: '1h' }); // keys current throughout: every use is a hit
    const ring = await ringFor(policy);
    const verifier = {
      verify: verifierFor(policy, ring),
      prove: () => {
        throw new Error('the token is not bound: nothing to prove');
      },
    };
    const token = await sign({
      claims: { scope: 'transfer:funds', auth_time: clock.seconds(), exp: clock.seconds() + 3600 },
    });
    const transfer = () =>
      authorize(
        policy,
        {
          method: 'POST',
          target: '/transfer',
          credentials: { kind: 'presented', scheme: 'Bearer', value: token },
        },
        verifier,
        clock.now,
      );

    expect((await transfer()).decision.kind).toBe('allow');
    clock.advance(9 * 60_000);
    expect((await transfer()).decision.kind).toBe('allow');
    clock.advance(61_000); // 10 minutes and a second since the login: max_age is 10m

    const refused = await transfer();
    expect(refused.decision).toMatchObject({
      kind: 'deny',
      code: 'insufficient_user_authentication',
      stepUp: { maxAgeSeconds: 600 },
    });
    expect(refused.verification?.kind).toBe('verified');
    expect(takeEvents()).toEqual(['miss', 'hit', 'hit']); // refused by the route, on a cached verification
  });
});

describe('verified-token cache: the issuer key set', () => {
  it('refuses a cached token once its key is removed from the JWKS and the set is fetched again', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign({ claims: { exp: clock.seconds() + 3600 } });
    await verify(token);

    fetch.publish([other.publicJwk]); // key-1 withdrawn
    clock.advance(JWKS_REFRESH_AT_MS - 1);
    // The held set is not due for a refresh: as without a cache, the token stands until the set is fetched again.
    expect((await verify(token)).kind).toBe('verified');
    expect(fetch.calls).toBe(1);

    clock.advance(1);
    expect((await verify(token)).kind).toBe('verified'); // a hit: the refresh it started runs in the background
    expect(fetch.calls).toBe(2);
    await settle();

    expect(await verify(token)).toMatchObject({ kind: 'invalid', reason: 'token_key_unknown' });
    expect(await verify(token)).toMatchObject({ kind: 'invalid', reason: 'token_key_unknown' });
    expect(fetch.calls).toBe(2); // no unknown-kid refetch within a second of the refresh
    expect(takeEvents()).toEqual(['miss', 'hit', 'hit', 'miss', 'miss']);
    expect(cacheOf(ring).size).toBe(0);
  });

  it('starts the due refresh on a cache hit without waiting for it; a set without the key then ends the entry', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign({ claims: { exp: clock.seconds() + 3600 } });
    await verify(token);
    takeEvents();
    fetch.publish([other.publicJwk]); // key-1 withdrawn
    clock.advance(JWKS_REFRESH_AT_MS);
    const refresh = fetch.holdNext();

    expect((await verify(token)).kind).toBe('verified'); // answered while the refresh is held
    await refresh.started;
    expect(fetch.calls).toBe(2);
    expect((await verify(token)).kind).toBe('verified');
    expect(takeEvents()).toEqual(['hit', 'hit']);
    expect(waits.waits).toEqual([]); // nothing waited for a fetch

    refresh.release();
    await settle();

    expect(await verify(token)).toMatchObject({ kind: 'invalid', reason: 'token_key_unknown' });
    expect(takeEvents()).toEqual(['miss']);
    expect(fetch.calls).toBe(2);
  });

  it('empties the cache when a fetch brings a changed key set (a rotation found through an unknown kid)', async () => {
    const policy = policyWith();
    fetch.publish([signer.publicJwk]);
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const early = await sign();
    await verify(early);
    expect(cacheOf(ring).size).toBe(1);
    const generation = ring.keysFor(DEMO_ISSUER)?.generation;

    fetch.publish([signer.publicJwk, other.publicJwk]);
    clock.advance(1000); // no fetch of any kind within a second of the last one
    const rotated = await sign({}, other);
    expect((await verify(rotated)).kind).toBe('verified');

    expect(ring.keysFor(DEMO_ISSUER)?.generation).toBe((generation ?? 0) + 1);
    // Neither token is kept: the old entry belonged to the old set, and the new token's verification
    // began under the old set, so which set verified it cannot be told.
    expect(cacheOf(ring).size).toBe(0);
    expect((await verify(early)).kind).toBe('verified');
    expect((await verify(rotated)).kind).toBe('verified');
    expect((await verify(rotated)).kind).toBe('verified');
    expect(takeEvents()).toEqual(['miss', 'miss', 'miss', 'miss', 'hit']);
  });

  it('keeps the cache when the key set is fetched again unchanged', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign({ claims: { exp: clock.seconds() + 3600 } });
    await verify(token);
    const generation = ring.keysFor(DEMO_ISSUER)?.generation;

    clock.advance(JWKS_REFRESH_AT_MS);
    await verify(token); // a hit, which starts the due refresh in the background
    await settle();
    await verify(token);

    expect(fetch.calls).toBe(2);
    expect(ring.keysFor(DEMO_ISSUER)?.generation).toBe(generation);
    expect(takeEvents()).toEqual(['miss', 'hit', 'hit']);
  });

  it('serves cached tokens while the issuer is down, as the held keys would verify them', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign({ claims: { exp: clock.seconds() + 3600 } });
    await verify(token);
    fetch.failWith(503);

    clock.advance(JWKS_REFRESH_AT_MS);
    expect((await verify(token)).kind).toBe('verified'); // starts a refresh, which fails
    await settle();
    expect((await verify(token)).kind).toBe('verified'); // the failed refresh keeps the held keys
    clock.advance(JWKS_COOLDOWN_MS);
    expect((await verify(token)).kind).toBe('verified'); // and the next one
    await settle();

    expect(fetch.calls).toBe(3);
    expect(takeEvents()).toEqual(['miss', 'hit', 'hit', 'hit']);
  });

  it('empties the cache once the keys are past jwks_max_stale: the issuer is then unavailable', async () => {
    const policy = policyWith({ jwks_max_stale: '5m' });
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const token = await sign({ claims: { exp: clock.seconds() + 3600 } });
    await verify(token);
    fetch.failWith(503);

    clock.advance(5 * 60_000);
    expect((await verify(token)).kind).toBe('verified');
    await settle();
    clock.advance(1);

    expect(await verify(token)).toEqual({ kind: 'keys_unavailable', issuer: DEMO_ISSUER });
    expect(cacheOf(ring).size).toBe(0);
    expect(takeEvents()).toEqual(['miss', 'hit', 'miss']);
  });
});

describe('verified-token cache: policy reloads', () => {
  it('is kept by a reload that changes only routes', async () => {
    const before = policyWith();
    const ring = await ringFor(before);
    const token = await sign();
    await verifierFor(before, ring)(token);

    const after = policyWith({}, [...ROUTES, '{ path: /healthz, public: true }']);
    const reloaded = await ringFor(after, ring);

    expect(cacheOf(reloaded)).toBe(cacheOf(ring));
    expect((await verifierFor(after, reloaded)(token)).kind).toBe('verified');
    expect(takeEvents()).toEqual(['miss', 'hit']);
  });

  it.each([
    [
      'audiences',
      (text: string) =>
        text.replace(`audiences: [${DEMO_AUDIENCE}]`, `audiences: [${DEMO_AUDIENCE}, api://other]`),
    ],
    ['algorithms', (text: string) => text.replace('algorithms: [RS256]', 'algorithms: [RS256, PS256]')],
    ['claims', (text: string) => text.replace('routes:', '    claims: { scopes: [scp] }\nroutes:')],
    ['require_typ', (text: string) => text.replace('routes:', '    require_typ: at+jwt\nroutes:')],
    [
      'clock_tolerance',
      (text: string) => text.replace(`clock_tolerance: ${TOLERANCE_S}`, 'clock_tolerance: 0'),
    ],
    ['jwks_cache_ttl', (text: string) => text.replace('jwks_cache_ttl: 60', 'jwks_cache_ttl: 120')],
    [
      'the key source',
      (text: string) => text.replace('jwks_uri: https://idp.example/', 'jwks_uri: https://keys.idp.example/'),
    ],
    ['token_cache', (text: string) => text.replace('ttl: 1h', 'ttl: 30m')],
  ])('is emptied by a reload that changes the issuer: %s', async (_change, edit) => {
    const text = demoPolicyText(ROUTES, { issuerSettings: BASE_SETTINGS });
    const before = compilePolicy(text, 'policy.yaml');
    const ring = await ringFor(before);
    await verifierFor(before, ring)(await sign());
    const edited = edit(text);
    expect(edited).not.toBe(text);

    const reloaded = await ringFor(compilePolicy(edited, 'policy.yaml'), ring);

    expect(cacheOf(reloaded)).not.toBe(cacheOf(ring));
    expect(cacheOf(reloaded).size).toBe(0);
  });

  it('a token cached before a reload that narrows the audiences is verified again, and refused', async () => {
    const before = policyWith();
    const ring = await ringFor(before);
    const token = await sign();
    await verifierFor(before, ring)(token);

    const after = compilePolicy(
      demoPolicyText(ROUTES, { issuerSettings: BASE_SETTINGS }).replace(
        `audiences: [${DEMO_AUDIENCE}]`,
        'audiences: [api://another-api]',
      ),
      'policy.yaml',
    );
    const reloaded = await ringFor(after, ring);

    expect(await verifierFor(after, reloaded)(token)).toMatchObject({ reason: 'token_audience_mismatch' });
  });
});

describe('verified-token cache: bounds', () => {
  it('stays within max_entries under a flood of unique tokens, counting each eviction', async () => {
    const policy = policyWith({ token_cache: '{ max_entries: 20, ttl: 1h }' });
    const ring = await ringFor(policy);
    const verify = verifierFor(policy, ring);
    const cache = cacheOf(ring);
    const tokens = await Promise.all(
      Array.from({ length: 60 }, (_, i) => sign({ claims: { sub: `user-${i}` } })),
    );

    for (const token of tokens) {
      expect((await verify(token)).kind).toBe('verified');
      expect(cache.size).toBeLessThanOrEqual(20);
    }

    const counted = takeEvents();
    expect(counted.filter((event) => event === 'miss')).toHaveLength(60);
    expect(counted.filter((event) => event === 'eviction')).toHaveLength(40);
    expect(cache.size).toBe(20);
    // The most recent tokens are the ones kept; the first ones were pushed out.
    expect(await verify(tokens[59]!)).toMatchObject({ kind: 'verified' });
    expect(await verify(tokens[0]!)).toMatchObject({ kind: 'verified' });
    expect(takeEvents()).toEqual(['hit', 'miss', 'eviction']);
  });

  it('refuses to be built without room for a single token', async () => {
    const policy = policyWith();
    const ring = await ringFor(policy);
    const keys = ring.keysFor(DEMO_ISSUER)!;
    const issuer = policy.issuers.get(DEMO_ISSUER)!;

    expect(
      () =>
        new VerifiedTokenCache({ issuer, keys, now: clock.now, settings: { maxEntries: 0, ttlSeconds: 1 } }),
    ).toThrow(RangeError);
  });
});
