import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys, type KeySetUsabilityEvent } from '../../../src/authn/issuer-keys.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { IssuerPolicy } from '../../../src/policy/compiled-policy.js';
import { DEMO_ISSUER, demoPolicyText } from '../../kit/inline-policy.js';
import { createKeySetFetch, recordWaits, settle, type FakeKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';
import { generateTestKey, type TestKey } from '../../kit/tokens.js';

const COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10
const MAX_STALE_MS = 5 * 60_000; // jwks_max_stale: 5m
/** When the background refresh starts after a successful fetch, with random() = 0: 75 % of the 60 s TTL. */
const REFRESH_AT_MS = 45_000;

let first: TestKey;
let second: TestKey;
let issuer: IssuerPolicy;

beforeAll(async () => {
  [first, second] = await Promise.all([generateTestKey('key-1'), generateTestKey('key-2')]);
  const text = demoPolicyText([], {
    issuerSettings: { jwks_cache_ttl: 60, jwks_refresh_cooldown: 10, jwks_max_stale: '5m' },
  });
  issuer = compilePolicy(text, 'policy.yaml').issuers.get(DEMO_ISSUER)!;
});

let clock: ManualClock;
let fetch: FakeKeySetFetch;
let usability: KeySetUsabilityEvent[];
let keys: IssuerKeys;

/** Keys with the refresh jitter given (default 0); a request waits for a fetch to its end, with no timer. */
function issuerKeys(random: () => number = () => 0): IssuerKeys {
  return new IssuerKeys({
    issuer,
    fetchKeySet: fetch.fetch,
    now: clock.now,
    random,
    waitAtMost: recordWaits('until_done').waitAtMost,
    onUsability: (event) => usability.push(event),
  });
}

beforeEach(() => {
  clock = createManualClock();
  fetch = createKeySetFetch([first.publicJwk]);
  usability = [];
  keys = issuerKeys();
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
    clock.advance(REFRESH_AT_MS);

    keys.refreshIfDue();
    await settle();

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
    clock.advance(REFRESH_AT_MS);
    expect(await lookUp('key-1')).toBe('found'); // the held set, while the refresh runs
    await settle();
    expect(keys.generation).toBe(3);
    expect(await lookUp('key-1')).toBe('ERR_JWKS_NO_MATCHING_KEY');
  });

  it('stays the same when a fetch fails and the held keys stay in use', async () => {
    await keys.prefetch();
    fetch.failWith(503);
    clock.advance(REFRESH_AT_MS);

    expect(await lookUp('key-1')).toBe('found');
    await settle();
    expect(fetch.calls).toBe(2);
    expect(keys.generation).toBe(1);
  });

  it('moves on when the keys are dropped past jwks_max_stale, and again when a fetch brings them back', async () => {
    await keys.prefetch();
    fetch.failWith(503);
    clock.advance(MAX_STALE_MS + 1);

    expect(keys.generation).toBe(2);
    fetch.failWith(undefined);
    keys.refreshIfDue();
    await settle();
    expect(keys.generation).toBe(3); // the same set as before the drop, but held anew
  });
});

describe('IssuerKeys.refreshIfDue: starting a due fetch in the background, never waiting', () => {
  it('starts the first fetch when no keys are held, without waiting for it, and only one', async () => {
    const held = fetch.holdNext();

    expect(keys.refreshIfDue()).toBeUndefined();
    keys.refreshIfDue();
    await held.started;
    expect(fetch.calls).toBe(1);
    expect(keys.usable).toBe(false);

    held.release();
    await settle();
    expect(keys.usable).toBe(true);
  });

  it('does nothing while the keys are fresh; at the refresh time starts one refresh, shared by later calls', async () => {
    await keys.prefetch();

    clock.advance(REFRESH_AT_MS - 1);
    keys.refreshIfDue();
    expect(fetch.calls).toBe(1);

    clock.advance(1);
    const held = fetch.holdNext();
    keys.refreshIfDue();
    keys.refreshIfDue();
    await held.started;
    expect(fetch.calls).toBe(2);
    expect(keys.usable).toBe(true); // the held keys stay in use meanwhile

    held.release();
    await settle();
    keys.refreshIfDue(); // the next one is due a refresh interval after this one ended
    expect(fetch.calls).toBe(2);
  });

  it('schedules the refresh at 75 % + 15 % × random() of jwks_cache_ttl, and a retry at cooldown × (1 + 0.2 × random()) after a failure', async () => {
    keys = issuerKeys(() => 0.5);
    await keys.prefetch();

    clock.advance(49_499); // 60 s × (0.75 + 0.15 × 0.5) = 49.5 s
    keys.refreshIfDue();
    expect(fetch.calls).toBe(1);
    fetch.failWith(503);
    clock.advance(1);
    keys.refreshIfDue();
    expect(fetch.calls).toBe(2);
    await settle();

    clock.advance(10_999); // 10 s × (1 + 0.2 × 0.5) = 11 s after the failed refresh ended
    keys.refreshIfDue();
    expect(fetch.calls).toBe(2);
    clock.advance(1);
    keys.refreshIfDue();
    expect(fetch.calls).toBe(3);
  });

  it('after the first fetch failed, retries only min(5 s, cooldown) after it ended', async () => {
    fetch.failWith(503);
    keys.refreshIfDue();
    await settle();

    clock.advance(4999);
    keys.refreshIfDue();
    expect(fetch.calls).toBe(1);
    clock.advance(1);
    keys.refreshIfDue();
    expect(fetch.calls).toBe(2);
  });

  it('past jwks_max_stale, drops the keys and fetches as when none are held', async () => {
    const triggers: string[] = [];
    keys = new IssuerKeys({
      issuer,
      fetchKeySet: fetch.fetch,
      now: clock.now,
      random: () => 0,
      onFetch: (event) => triggers.push(event.trigger),
    });
    await keys.prefetch();
    clock.advance(MAX_STALE_MS + 1); // no use of the keys in between: no refresh ran

    keys.refreshIfDue();
    expect(keys.usable).toBe(false);
    await settle();

    expect(keys.usable).toBe(true);
    expect(triggers).toEqual(['initial', 'initial']);
  });
});

describe('IssuerKeys.usable: whether the keys may be used', () => {
  it('is false before any fetch, and after a failed first one', async () => {
    expect(keys.usable).toBe(false);
    fetch.failWith(503);
    await keys.prefetch();

    expect(keys.usable).toBe(false);
    clock.advance(COOLDOWN_MS);
    await keys.prefetch(); // a retry, failing too
    expect(fetch.calls).toBe(2);
    expect(keys.usable).toBe(false);
    // Said once, with its cause, however often it is retried.
    expect(usability).toEqual([
      {
        issuer: DEMO_ISSUER,
        state: 'unusable',
        reason: 'fetch_failed',
        cause: 'status',
        status: 503,
        fetchedAtMs: 0,
      },
    ]);
  });

  it('stays true while every refresh fails, up to jwks_max_stale after the last success; then false, said once', async () => {
    await keys.prefetch();
    const fetchedAt = clock.now();
    fetch.failWith(503);

    while (clock.now() - fetchedAt < MAX_STALE_MS - COOLDOWN_MS) {
      clock.advance(COOLDOWN_MS);
      keys.refreshIfDue();
      await settle();
      expect(keys.usable).toBe(true);
    }
    expect(fetch.calls).toBeGreaterThan(20); // a failed refresh every cooldown
    clock.advance(fetchedAt + MAX_STALE_MS - clock.now());
    expect(keys.usable).toBe(true);
    expect(usability).toEqual([]);

    clock.advance(1);
    expect(keys.usable).toBe(false);
    expect(keys.usable).toBe(false);
    expect(await lookUp('key-1')).toBe('ERR_JWKS_UNAVAILABLE');
    expect(keys.usable).toBe(false);
    // With the cause of the last refresh that failed.
    expect(usability).toEqual([
      {
        issuer: DEMO_ISSUER,
        state: 'unusable',
        reason: 'stale',
        cause: 'status',
        status: 503,
        fetchedAtMs: fetchedAt,
      },
    ]);
  });

  it('becomes true again on the next successful fetch, said once', async () => {
    await keys.prefetch();
    fetch.failWith(503);
    clock.advance(MAX_STALE_MS + 1);
    expect(keys.usable).toBe(false);

    fetch.failWith(undefined);
    expect(await lookUp('key-1')).toBe('found');
    expect(keys.usable).toBe(true);
    clock.advance(REFRESH_AT_MS);
    keys.refreshIfDue();
    await settle();

    expect(fetch.calls).toBe(3);
    expect(usability.map((event) => event.state)).toEqual(['unusable', 'usable']);
    expect(usability[1]).toEqual({
      issuer: DEMO_ISSUER,
      state: 'usable',
      fetchedAtMs: clock.now() - REFRESH_AT_MS,
    });
  });
});
