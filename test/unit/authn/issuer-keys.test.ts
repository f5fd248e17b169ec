import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lookUp } from '../../kit/look-up-key.js';
import {
  IssuerKeys,
  type KeySetFetchEvent,
  type KeySetUsabilityEvent,
} from '../../../src/authn/issuer-keys.js';
import { KeySetError, KeySetReadError } from '../../../src/authn/key-set-errors.js';
import { KEY_SET_LIMITS, readKeySet, type FetchKeySet } from '../../../src/authn/read-key-set.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { IssuerPolicy } from '../../../src/policy/compiled-policy.js';
import { demoPolicyText } from '../../kit/inline-policy.js';
import { createKeySetFetch, recordWaits, settle, type FakeKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';
import { generateTestKey, type TestKey } from '../../kit/tokens.js';

const ISSUER = 'https://idp.example/';
const JWKS_URI = 'https://idp.example/.well-known/jwks.json';
const TTL_MS = 60_000; // jwks_cache_ttl: 60
const COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10
/** When the background refresh starts after a successful fetch, with random() = 0: 75 % of the TTL. */
const REFRESH_AT_MS = 45_000;
const FETCH_WAIT_MS = 500; // the default jwks_fetch_wait

interface IssuerSettings {
  readonly ttl?: number;
  readonly cooldown?: number;
  readonly jwksUri?: string;
  /** jwks_max_stale, as written in the policy (default: none, so 24 hours). */
  readonly maxStale?: string;
  /** jwks_fetch_wait, as written in the policy (default: none, so 500 ms). */
  readonly fetchWait?: string;
}

function issuerWith(settings: IssuerSettings = {}): IssuerPolicy {
  const text = demoPolicyText([], {
    keys: { jwksUri: settings.jwksUri ?? JWKS_URI },
    issuerSettings: {
      jwks_cache_ttl: settings.ttl ?? TTL_MS / 1000,
      jwks_refresh_cooldown: settings.cooldown ?? COOLDOWN_MS / 1000,
      ...(settings.maxStale === undefined ? {} : { jwks_max_stale: settings.maxStale }),
      ...(settings.fetchWait === undefined ? {} : { jwks_fetch_wait: settings.fetchWait }),
    },
  });
  const policy = compilePolicy(text, 'policy.yaml');
  return policy.issuers.get(ISSUER)!;
}

let first: TestKey;
let second: TestKey;
let third: TestKey;

beforeAll(async () => {
  [first, second, third] = await Promise.all([
    generateTestKey('key-1'),
    generateTestKey('key-2'),
    generateTestKey('key-3'),
  ]);
});

let clock: ManualClock;
let fetch: FakeKeySetFetch;
let events: KeySetFetchEvent[];
let usability: KeySetUsabilityEvent[];
/** The `ms` of every wait a request made for a fetch, in order (the issuer's jwks_fetch_wait). */
let waits: readonly number[];

beforeEach(() => {
  clock = createManualClock();
  fetch = createKeySetFetch([first.publicJwk]);
  events = [];
  usability = [];
  waits = [];
});

interface KeysOptions {
  readonly issuer?: IssuerPolicy;
  readonly fetchKeySet?: FetchKeySet;
  /** The refresh jitter (default 0: the refresh at 75 % of the TTL, a retry at exactly the cooldown). */
  readonly random?: () => number;
  /**
   * How a request waits for a fetch: to its end (default; a scripted fetch ends at once unless held), or
   * not at all, as if jwks_fetch_wait had passed (for a fetch that hangs). No timer either way.
   */
  readonly wait?: 'until_done' | 'give_up';
}

function issuerKeys(options: KeysOptions = {}): IssuerKeys {
  const recorded = recordWaits(options.wait ?? 'until_done');
  waits = recorded.waits;
  return new IssuerKeys({
    issuer: options.issuer ?? issuerWith(),
    fetchKeySet: options.fetchKeySet ?? fetch.fetch,
    now: clock.now,
    random: options.random ?? (() => 0),
    waitAtMost: recorded.waitAtMost,
    onFetch: (event) => events.push(event),
    onUsability: (event) => usability.push(event),
  });
}

describe('IssuerKeys: fetching and caching', () => {
  it('fetches nothing until first used; the first use waits for the fetch, at most jwks_fetch_wait', async () => {
    const keys = issuerKeys();

    expect(fetch.calls).toBe(0);
    expect(keys.usable).toBe(false);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(1);
    expect(fetch.urls).toEqual([JWKS_URI]);
    expect(keys.usable).toBe(true);
    expect(waits).toEqual([FETCH_WAIT_MS]);
    expect(events).toEqual([{ issuer: ISSUER, outcome: 'ok', trigger: 'initial', keys: 1 }]);
  });

  it('lets concurrent first uses share one fetch', async () => {
    const keys = issuerKeys();
    const held = fetch.holdNext();

    const lookups = Array.from({ length: 5 }, () => lookUp(keys, 'key-1'));
    await held.started;
    held.release();

    expect(await Promise.all(lookups)).toEqual(Array(5).fill('found'));
    expect(fetch.calls).toBe(1);
  });

  it('uses the held keys, fetching nothing, until the background refresh is due', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');

    clock.advance(REFRESH_AT_MS - 1);

    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(1);
  });

  it('refreshes in the background once due, answering from the held keys without waiting for it', async () => {
    const keys = issuerKeys();
    await keys.prefetch();
    clock.advance(REFRESH_AT_MS);
    const refresh = fetch.holdNext();

    expect(await lookUp(keys, 'key-1')).toBe('found'); // the refresh is still held
    await refresh.started;
    expect(fetch.calls).toBe(2);
    expect(waits).toEqual([]);
    expect(events.map((event) => event.trigger)).toEqual(['initial']);

    refresh.release();
    await settle();
    expect(events.map((event) => event.trigger)).toEqual(['initial', 'refresh']);
    expect(events.at(-1)).toEqual({ issuer: ISSUER, outcome: 'ok', trigger: 'refresh', keys: 1 });
  });

  it('keeps the held keys when a refresh brings a set with no usable key, and says the fetch failed', async () => {
    const keys = issuerKeys();
    await keys.prefetch();
    const generation = keys.generation;
    fetch.publish([{ ...first.publicJwk, use: 'enc' }]); // nothing a signature could be checked with
    clock.advance(REFRESH_AT_MS);

    expect(await lookUp(keys, 'key-1')).toBe('found');
    await settle();
    expect(fetch.calls).toBe(2);
    expect(events.at(-1)).toMatchObject({
      outcome: 'error',
      trigger: 'refresh',
      error: 'the key set has no usable key',
    });
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(keys.usable).toBe(true);
    expect(keys.generation).toBe(generation);
  });

  it('lets the uses during a background refresh share it: one fetch, none waiting', async () => {
    const keys = issuerKeys();
    await keys.prefetch();
    clock.advance(REFRESH_AT_MS);
    const refresh = fetch.holdNext();

    const answers = await Promise.all([lookUp(keys, 'key-1'), lookUp(keys, 'key-1'), lookUp(keys, 'key-1')]);
    await refresh.started;
    refresh.release();
    await settle();

    expect(answers).toEqual(['found', 'found', 'found']);
    expect(fetch.calls).toBe(2);
    expect(waits).toEqual([]);
  });

  it('keeps using the held keys when a refresh fails, and retries only a cooldown after it ended', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(REFRESH_AT_MS);
    fetch.failWith(500);

    expect(await lookUp(keys, 'key-1')).toBe('found');
    await settle();
    expect(keys.usable).toBe(true);
    expect(events[1]).toEqual({
      issuer: ISSUER,
      outcome: 'error',
      trigger: 'refresh',
      error: `${JWKS_URI} answered HTTP 500`,
      cause: 'status',
      status: 500,
    });
    expect(usability).toEqual([]); // the held keys stay usable: no change of state

    clock.advance(COOLDOWN_MS - 1);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(2);

    clock.advance(1);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(3);
  });

  it('keeps the held keys also when the refreshed set cannot be read', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(REFRESH_AT_MS);
    fetch.publish([]);
    fetch.failWith(new Error('socket hang up'));

    expect(await lookUp(keys, 'key-1')).toBe('found');
    await settle();
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(events.at(-1)).toMatchObject({ outcome: 'error', trigger: 'refresh', error: 'socket hang up' });
  });

  it('after a refresh that took 8 s and failed, waits the cooldown from its end, not its start', async () => {
    const keys = issuerKeys({ issuer: issuerWith({ cooldown: 5 }) });
    await keys.prefetch();
    clock.advance(REFRESH_AT_MS);
    fetch.failWith(503);
    const slow = fetch.holdNext();
    keys.refreshIfDue();
    await slow.started;

    clock.advance(8000);
    slow.release();
    await settle();
    expect(events.at(-1)).toMatchObject({ outcome: 'error', trigger: 'refresh' });

    clock.advance(4999); // 13 s after the refresh started, not yet 5 s after it ended
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(2);

    clock.advance(1);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(3);
  });
});

describe('IssuerKeys: when the background refresh starts', () => {
  it.each([
    ['0', 0, 45_000],
    ['0.5', 0.5, 49_500],
    ['0.999999 (about 1)', 0.999_999, 54_000],
  ])(
    'with random() = %s, at %i ms after the fetch (75 to 90 % of jwks_cache_ttl), not before',
    async (_case, random, refreshAtMs) => {
      const keys = issuerKeys({ random: () => random });
      await keys.prefetch();

      clock.advance(refreshAtMs - 1);
      expect(await lookUp(keys, 'key-1')).toBe('found');
      keys.refreshIfDue();
      expect(fetch.calls).toBe(1);

      clock.advance(1);
      expect(await lookUp(keys, 'key-1')).toBe('found');
      expect(fetch.calls).toBe(2);
      expect(waits).toEqual([]);
    },
  );
});

describe('IssuerKeys: a key set endpoint that hangs', () => {
  const MAX_STALE_MS = 15 * 60_000; // jwks_max_stale: 15m

  it('answers from the held keys while a refresh hangs, up to jwks_max_stale; then refuses, and recovers on a success', async () => {
    const keys = issuerKeys({ issuer: issuerWith({ maxStale: '15m' }), wait: 'give_up' });
    await keys.prefetch();
    const fetchedAt = clock.now();
    clock.advance(REFRESH_AT_MS);
    const hung = fetch.holdNext(); // never released until the end
    expect(await lookUp(keys, 'key-1')).toBe('found');
    await hung.started;

    for (let elapsed = 0; elapsed < 10 * TTL_MS; elapsed += 5000) {
      clock.advance(5000);
      expect(await lookUp(keys, 'key-1')).toBe('found');
    }
    expect(fetch.calls).toBe(2); // the hung refresh is still under way: no other starts
    expect(waits).toEqual([]); // and no request waited for it

    clock.advance(fetchedAt + MAX_STALE_MS - clock.now()); // exactly jwks_max_stale since the last success
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(keys.usable).toBe(true);
    const generation = keys.generation;
    expect(usability).toEqual([]);

    clock.advance(1);
    const answers = await Promise.all(Array.from({ length: 5 }, () => lookUp(keys, 'key-1')));
    expect(answers).toEqual(Array(5).fill('ERR_JWKS_UNAVAILABLE'));
    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');
    expect(keys.usable).toBe(false);
    expect(keys.usable).toBe(false);
    expect(keys.generation).toBe(generation + 1); // verified-token caches empty
    expect(usability).toEqual([
      { issuer: ISSUER, state: 'unusable', reason: 'stale', fetchedAtMs: fetchedAt },
    ]);
    expect(waits).toEqual(Array(6).fill(FETCH_WAIT_MS)); // each waited for the hung fetch, at most this
    expect(fetch.calls).toBe(2);

    hung.release(); // the endpoint answers at last
    await settle();
    expect(keys.usable).toBe(true);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(keys.generation).toBe(generation + 2);
    expect(usability).toEqual([
      { issuer: ISSUER, state: 'unusable', reason: 'stale', fetchedAtMs: fetchedAt },
      { issuer: ISSUER, state: 'usable', fetchedAtMs: clock.now() },
    ]);

    clock.advance(REFRESH_AT_MS); // a later success is nothing new
    keys.refreshIfDue();
    await settle();
    expect(fetch.calls).toBe(3);
    expect(usability).toHaveLength(2);
  });

  it('at start-up, a request waits at most jwks_fetch_wait, then gets ERR_JWKS_UNAVAILABLE; the fetch fills the cache later', async () => {
    const keys = issuerKeys({ issuer: issuerWith({ fetchWait: '800ms' }), wait: 'give_up' });
    const hung = fetch.holdNext();

    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');
    await hung.started;
    expect(waits).toEqual([800]);
    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE'); // joins the fetch under way
    expect(fetch.calls).toBe(1);
    expect(waits).toEqual([800, 800]);
    expect(events).toEqual([]);

    hung.release();
    await settle();

    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(1);
    expect(waits).toEqual([800, 800]); // keys held: nothing waits any more
    expect(events).toEqual([{ issuer: ISSUER, outcome: 'ok', trigger: 'initial', keys: 1 }]);
    expect(usability).toEqual([]); // never usable before: no change of state to report
  });
});

describe('IssuerKeys: unknown kid and key rotation', () => {
  it('refetches once for an unknown kid and finds the newly published key', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(COOLDOWN_MS);
    fetch.publish([first.publicJwk, second.publicJwk]);

    expect(await lookUp(keys, 'key-2')).toBe('found');
    expect(fetch.calls).toBe(2);
    expect(events.at(-1)).toEqual({ issuer: ISSUER, outcome: 'ok', trigger: 'unknown_key', keys: 2 });
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(2);
  });

  it('refetches at most once per cooldown, whatever unknown kids arrive', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(COOLDOWN_MS);

    expect(await lookUp(keys, 'unknown-a')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(fetch.calls).toBe(2);

    fetch.publish([first.publicJwk, second.publicJwk]);
    clock.advance(COOLDOWN_MS - 1);
    expect(await lookUp(keys, 'key-2')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(await lookUp(keys, 'unknown-b')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(fetch.calls).toBe(2);

    clock.advance(1);
    expect(await lookUp(keys, 'key-2')).toBe('found');
    expect(fetch.calls).toBe(3);
  });

  it('waits at most jwks_fetch_wait for an unknown-kid refetch, and counts its cooldown from the end of it', async () => {
    const keys = issuerKeys({ wait: 'give_up' });
    await keys.prefetch();
    clock.advance(COOLDOWN_MS);
    fetch.publish([first.publicJwk, second.publicJwk]);
    const slow = fetch.holdNext();

    expect(await lookUp(keys, 'key-2')).toBe('ERR_JWKS_NO_MATCHING_KEY'); // gave up waiting
    await slow.started;
    expect(waits).toEqual([FETCH_WAIT_MS]);
    clock.advance(8000); // the refetch takes 8 s
    slow.release();
    await settle();
    expect(await lookUp(keys, 'key-2')).toBe('found'); // it filled the cache
    expect(events.at(-1)).toMatchObject({ outcome: 'ok', trigger: 'unknown_key', keys: 2 });

    fetch.publish([first.publicJwk, second.publicJwk, third.publicJwk]);
    clock.advance(COOLDOWN_MS - 1); // 18 s after the refetch started, not yet 10 s after it ended
    expect(await lookUp(keys, 'key-3')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(fetch.calls).toBe(2);

    clock.advance(1);
    expect(await lookUp(keys, 'key-3')).toBe('ERR_JWKS_NO_MATCHING_KEY'); // gave up waiting again
    expect(fetch.calls).toBe(3);
    await settle();
    expect(await lookUp(keys, 'key-3')).toBe('found');
  });

  it('does not refetch within a second of the previous fetch, whatever the trigger', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    fetch.publish([first.publicJwk, second.publicJwk]);

    clock.advance(999);
    expect(await lookUp(keys, 'key-2')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(fetch.calls).toBe(1);
  });

  it('picks up the first rotation after start-up without waiting out the cooldown', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1'); // the initial fetch
    fetch.publish([first.publicJwk, second.publicJwk]);

    clock.advance(1000); // well within the 10 s cooldown, but no unknown-kid refetch has happened yet
    expect(await lookUp(keys, 'key-2')).toBe('found');
    expect(fetch.calls).toBe(2);

    // From then on the cooldown applies to unknown-kid refetches.
    clock.advance(1000);
    expect(await lookUp(keys, 'made-up')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(fetch.calls).toBe(2);
  });

  it('lets concurrent unknown-kid lookups share one refetch', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(COOLDOWN_MS);
    fetch.publish([first.publicJwk, second.publicJwk, third.publicJwk]);
    const held = fetch.holdNext();

    const lookups = [lookUp(keys, 'key-2'), lookUp(keys, 'key-3'), lookUp(keys, 'key-2')];
    await held.started;
    held.release();

    expect(await Promise.all(lookups)).toEqual(['found', 'found', 'found']);
    expect(fetch.calls).toBe(2);
  });

  it('keeps the known keys when the unknown-kid refetch fails', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(COOLDOWN_MS);
    fetch.failWith(503);

    expect(await lookUp(keys, 'key-2')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(events.at(-1)).toMatchObject({ outcome: 'error', trigger: 'unknown_key' });
  });

  it('drops a key the issuer has withdrawn once the background refresh brings the new set', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    fetch.publish([second.publicJwk]);
    clock.advance(REFRESH_AT_MS);

    expect(await lookUp(keys, 'key-1')).toBe('found'); // the held set, while the refresh runs
    await settle();

    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(await lookUp(keys, 'key-2')).toBe('found');
    expect(fetch.calls).toBe(2);
  });
});

describe('IssuerKeys: while no keys are held', () => {
  it('answers ERR_JWKS_UNAVAILABLE when the first fetch fails', async () => {
    // As Node's fetch fails: a TypeError whose cause is the socket's error.
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' });
    fetch.failWith(new TypeError('fetch failed', { cause: refused }));
    const keys = issuerKeys();

    const error: unknown = await Promise.resolve()
      .then(() => keys.getKey({ alg: 'RS256', kid: 'key-1' }, { payload: '', signature: '' }))
      .then(
        () => undefined,
        (thrown: unknown) => thrown,
      );

    expect(error).toBeInstanceOf(KeySetError);
    expect(error).toMatchObject({ code: 'ERR_JWKS_UNAVAILABLE', issuer: ISSUER });
    expect(keys.usable).toBe(false);
    expect(events).toEqual([
      {
        issuer: ISSUER,
        outcome: 'error',
        trigger: 'initial',
        error: 'fetch failed (ECONNREFUSED)',
        cause: 'connect',
      },
    ]);
    expect(usability).toEqual([
      { issuer: ISSUER, state: 'unusable', reason: 'fetch_failed', cause: 'connect', fetchedAtMs: 0 },
    ]);
  });

  it.each([
    ['a 30 s cooldown', 30, 5000],
    ['a 10 s cooldown', 10, 5000],
    ['a 2 s cooldown', 2, 2000],
  ])(
    'with %s (%i s), retries a failed first fetch after min(5 s, cooldown) = %i ms, not sooner',
    async (_case, cooldown, retryMs) => {
      const keys = issuerKeys({ issuer: issuerWith({ cooldown }) });
      fetch.failWith(500);
      expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');

      clock.advance(retryMs - 1);
      fetch.failWith(undefined);
      expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');
      expect(fetch.calls).toBe(1);

      clock.advance(1);
      expect(await lookUp(keys, 'key-1')).toBe('found');
      expect(fetch.calls).toBe(2);
    },
  );

  it('counts the retry delay from the end of a failed fetch: one that took 8 s, cooldown 5 s', async () => {
    const keys = issuerKeys({ issuer: issuerWith({ cooldown: 5 }), wait: 'give_up' });
    const slow = fetch.holdNext();
    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');
    await slow.started;

    clock.advance(8000);
    fetch.failWith(503);
    slow.release();
    await settle();
    expect(events).toEqual([expect.objectContaining({ outcome: 'error', trigger: 'initial' })]);
    fetch.failWith(undefined);

    clock.advance(4999); // 13 s after the fetch started, not yet 5 s after it ended
    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');
    keys.refreshIfDue();
    await keys.prefetch();
    expect(fetch.calls).toBe(1);

    clock.advance(1);
    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE'); // started the fetch, gave up waiting
    expect(fetch.calls).toBe(2);
    await settle();
    expect(await lookUp(keys, 'key-1')).toBe('found');
  });
});

describe('IssuerKeys: prefetch and ready', () => {
  it('prefetches the keys once, and not again while they are held', async () => {
    const keys = issuerKeys();

    await keys.prefetch();
    expect(keys.usable).toBe(true);
    await keys.prefetch();
    expect(await lookUp(keys, 'key-1')).toBe('found');

    expect(fetch.calls).toBe(1);
    expect(events).toEqual([expect.objectContaining({ outcome: 'ok', trigger: 'initial' })]);
  });

  it('never throws from prefetch: a failure is an event, and ready stays false', async () => {
    fetch.failWith(500);
    const keys = issuerKeys();

    await expect(keys.prefetch()).resolves.toBeUndefined();

    expect(keys.usable).toBe(false);
    expect(events).toEqual([expect.objectContaining({ outcome: 'error', trigger: 'initial' })]);
  });

  it('respects the retry delay in prefetch too', async () => {
    fetch.failWith(500);
    const keys = issuerKeys();
    await keys.prefetch();
    fetch.failWith(undefined);

    await keys.prefetch();
    expect(fetch.calls).toBe(1);

    clock.advance(5000);
    await keys.prefetch();
    expect(fetch.calls).toBe(2);
    expect(keys.usable).toBe(true);
  });

  it('shares a prefetch under way with a first use', async () => {
    const keys = issuerKeys();
    const held = fetch.holdNext();

    const prefetch = keys.prefetch();
    const lookup = lookUp(keys, 'key-1');
    await held.started;
    held.release();

    await prefetch;
    expect(await lookup).toBe('found');
    expect(fetch.calls).toBe(1);
  });
});

describe('IssuerKeys: refusing a bad key set', () => {
  const huge = 'x'.repeat(KEY_SET_LIMITS.maxBytes + 1);

  const body = { cause: 'body' } as const;
  it.each<[string, () => Response, string, { cause: string; status?: number }]>([
    [
      'a non-200 answer',
      () => new Response('{"keys": []}', { status: 404 }),
      `${JWKS_URI} answered HTTP 404`,
      { cause: 'status', status: 404 },
    ],
    [
      'a redirect answer',
      () => new Response(null, { status: 302, headers: { location: 'https://evil.example/jwks.json' } }),
      `${JWKS_URI} answered HTTP 302`,
      { cause: 'status', status: 302 },
    ],
    [
      'a body over 512 KiB',
      () => new Response(JSON.stringify({ keys: [], padding: huge })),
      `${JWKS_URI} sent more than 524288 bytes`,
      body,
    ],
    ['invalid JSON', () => new Response('{"keys": ['), 'the key set is not valid JSON', body],
    ['no keys array', () => new Response('{"key": []}'), 'the key set has no "keys" array', body],
    [
      'more than 100 keys',
      () => new Response(JSON.stringify({ keys: Array(101).fill({ kty: 'oct' }) })),
      'the key set has more than 100 keys',
      body,
    ],
  ])('refuses %s and holds no keys, and says the fault once', async (_case, respond, message, fault) => {
    const keys = issuerKeys({ fetchKeySet: async () => respond() });

    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');
    expect(keys.usable).toBe(false);
    expect(events).toEqual([
      { issuer: ISSUER, outcome: 'error', trigger: 'initial', error: message, ...fault },
    ]);
    expect(usability).toEqual([
      { issuer: ISSUER, state: 'unusable', reason: 'fetch_failed', ...fault, fetchedAtMs: 0 },
    ]);
  });
});

describe('readKeySet', () => {
  let dir: string;
  const keySet = (keys: readonly JWK[]) => JSON.stringify({ keys });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'authz-keyset-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const neverFetch: FetchKeySet = () => Promise.reject(new Error('a key file must not be fetched'));

  async function file(name: string, content: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content);
    return path;
  }

  it('reads the keys of a key set file', async () => {
    const path = await file('good.json', keySet([first.publicJwk, second.publicJwk]));

    expect(await readKeySet({ kind: 'file', path }, neverFetch)).toEqual({
      keys: [first.publicJwk, second.publicJwk],
    });
  });

  it('accepts exactly 100 keys', async () => {
    const path = await file('hundred.json', keySet(Array(100).fill(first.publicJwk)));

    expect((await readKeySet({ kind: 'file', path }, neverFetch)).keys).toHaveLength(100);
  });

  it.each([
    ['not JSON', 'keys: []', 'the key set is not valid JSON'],
    ['JSON without keys', '{}', 'the key set has no "keys" array'],
    ['keys that are not an array', '{"keys": {"kty": "RSA"}}', 'the key set has no "keys" array'],
    ['JSON null', 'null', 'the key set has no "keys" array'],
    ['a JSON number', '5', 'the key set has no "keys" array'],
    ['101 keys', JSON.stringify({ keys: Array(101).fill({}) }), 'the key set has more than 100 keys'],
  ])('refuses a key set file that is %s', async (_case, content, message) => {
    const path = await file(`bad-${_case.replace(/\W+/g, '-')}.json`, content);

    await expect(readKeySet({ kind: 'file', path }, neverFetch)).rejects.toThrow(
      new KeySetReadError('ERR_JWKS_BODY', message),
    );
  });

  it('refuses a key set file larger than 512 KiB', async () => {
    const path = await file(
      'large.json',
      JSON.stringify({ keys: [], padding: 'x'.repeat(KEY_SET_LIMITS.maxBytes) }),
    );

    await expect(readKeySet({ kind: 'file', path }, neverFetch)).rejects.toThrow(
      `${path} is larger than 524288 bytes`,
    );
  });

  it('refuses a missing key set file and a folder', async () => {
    const folder = join(dir, 'folder.json');
    await mkdir(folder);

    await expect(readKeySet({ kind: 'file', path: join(dir, 'absent.json') }, neverFetch)).rejects.toThrow(
      /ENOENT/,
    );
    await expect(readKeySet({ kind: 'file', path: folder }, neverFetch)).rejects.toThrow(
      `${folder} is not a file`,
    );
  });

  it('has the documented limits: 512 KiB, 100 keys, 5 s', () => {
    expect(KEY_SET_LIMITS).toEqual({ maxBytes: 512 * 1024, maxKeys: 100, timeoutMs: 5000 });
  });

  describe('over HTTP (injected fetch)', () => {
    const uri = new URL(JWKS_URI);
    const source = { kind: 'uri', uri } as const;

    it('reads a 200 answer and passes an abort signal for the timeout', async () => {
      let signal: AbortSignal | undefined;
      const fetchKeySet: FetchKeySet = async (_url, init) => {
        signal = init.signal;
        return new Response(keySet([first.publicJwk]));
      };

      expect(await readKeySet(source, fetchKeySet)).toEqual({ keys: [first.publicJwk] });
      expect(signal).toBeInstanceOf(AbortSignal);
    });

    it('accepts a body of exactly 512 KiB', async () => {
      const prefix = '{"keys":[],"padding":"';
      const body = prefix + 'x'.repeat(KEY_SET_LIMITS.maxBytes - prefix.length - 2) + '"}';

      expect(Buffer.byteLength(body)).toBe(KEY_SET_LIMITS.maxBytes);
      expect(await readKeySet(source, async () => new Response(body))).toEqual({ keys: [] });
    });

    it('refuses a declared content-length over 512 KiB without reading the body', async () => {
      let pulled = false;
      const body = new ReadableStream<Uint8Array>(
        {
          pull: (controller) => {
            pulled = true;
            controller.enqueue(new TextEncoder().encode('{"keys":[]}'));
            controller.close();
          },
        },
        { highWaterMark: 0 }, // pulled only when someone reads
      );
      const response = new Response(body, {
        headers: { 'content-length': String(KEY_SET_LIMITS.maxBytes + 1) },
      });

      await expect(readKeySet(source, async () => response)).rejects.toThrow(
        `${JWKS_URI} sent more than 524288 bytes`,
      );
      expect(pulled).toBe(false);
    });

    it('cuts off an endless body once it passes 512 KiB', async () => {
      let sent = 0;
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      const endless = new ReadableStream<Uint8Array>({
        pull: (controller) => {
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });

      await expect(readKeySet(source, async () => new Response(endless))).rejects.toThrow(
        `${JWKS_URI} sent more than 524288 bytes`,
      );
      expect(sent).toBeLessThanOrEqual(KEY_SET_LIMITS.maxBytes + 3 * chunk.byteLength);
    });

    it.each([201, 204, 304, 500])('refuses HTTP %i', async (status) => {
      const body = status === 204 || status === 304 ? null : keySet([first.publicJwk]);

      await expect(readKeySet(source, async () => new Response(body, { status }))).rejects.toThrow(
        `${JWKS_URI} answered HTTP ${status}`,
      );
    });
  });
});
