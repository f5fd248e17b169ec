import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../src/authn/issuer-keys.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { IssuerPolicy } from '../../src/policy/compiled-policy.js';
import { DEMO_ISSUER, demoPolicyText } from '../support/inline-policy.js';
import { createKeySetFetch, type FakeKeySetFetch } from '../support/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../support/manual-clock.js';
import { generateTestKey, type TestKey } from '../support/test-issuer.js';

const TTL_MS = 60_000; // jwks_cache_ttl: 60
const COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10

let first: TestKey;
let second: TestKey;
let issuer: IssuerPolicy;

beforeAll(async () => {
  [first, second] = await Promise.all([generateTestKey('key-1'), generateTestKey('key-2')]);
  const text = demoPolicyText([], { issuerSettings: { jwks_cache_ttl: 60, jwks_refresh_cooldown: 10 } });
  issuer = compilePolicy(text, 'policy.yaml').issuers.get(DEMO_ISSUER)!;
});

let clock: ManualClock;
let fetch: FakeKeySetFetch;
let keys: IssuerKeys;

beforeEach(() => {
  clock = createManualClock();
  fetch = createKeySetFetch([first.publicJwk]);
  keys = new IssuerKeys({ issuer, fetchKeySet: fetch.fetch, now: clock.now });
});

/** Resolves a key the way jwtVerify would; 'found' or the error code. */
async function lookUp(kid: string): Promise<string> {
  try {
    await keys.getKey({ alg: 'RS256', kid }, { payload: '', signature: '' });
    return 'found';
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
}

describe('IssuerKeys.generation: which key set is held', () => {
  it('is 0 before any keys, and 1 once the first set is fetched', async () => {
    expect(keys.generation).toBe(0);
    await keys.prefetch();
    expect(keys.generation).toBe(1);
  });

  it('stays the same when the same set is fetched again', async () => {
    await keys.prefetch();
    clock.advance(TTL_MS);

    expect(await lookUp('key-1')).toBe('found');
    expect(fetch.calls).toBe(2);
    expect(keys.generation).toBe(1);
  });

  it('moves on when a fetch brings a set with a key added, and again with one removed', async () => {
    await keys.prefetch();
    fetch.publish([first.publicJwk, second.publicJwk]);
    clock.advance(COOLDOWN_MS);
    expect(await lookUp('key-2')).toBe('found'); // unknown kid: fetched at once
    expect(keys.generation).toBe(2);

    fetch.publish([second.publicJwk]);
    clock.advance(TTL_MS);
    expect(await lookUp('key-1')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(keys.generation).toBe(3);
  });

  it('stays the same when a fetch fails and the held keys stay in use', async () => {
    await keys.prefetch();
    fetch.failWith(503);
    clock.advance(TTL_MS);

    expect(await lookUp('key-1')).toBe('found');
    expect(fetch.calls).toBe(2);
    expect(keys.generation).toBe(1);
  });
});

describe('IssuerKeys.refreshDue: whether using the keys now would fetch them first', () => {
  it('holds before any keys, not while they are current, and again once jwks_cache_ttl has passed', async () => {
    expect(keys.refreshDue).toBe(true);
    await keys.prefetch();
    expect(keys.refreshDue).toBe(false);

    clock.advance(TTL_MS - 1);
    expect(keys.refreshDue).toBe(false);
    clock.advance(1);
    expect(keys.refreshDue).toBe(true);
  });

  it('does not hold while a cooldown forbids the fetch, after a failed one', async () => {
    await keys.prefetch();
    fetch.failWith(503);
    clock.advance(TTL_MS);
    await lookUp('key-1'); // tries, fails, keeps the stale keys

    expect(keys.refreshDue).toBe(false);
    clock.advance(COOLDOWN_MS);
    expect(keys.refreshDue).toBe(true);
  });
});
