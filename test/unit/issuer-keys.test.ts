import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lookUp } from '../support/look-up-key.js';
import { IssuerKeys, type KeySetFetchEvent } from '../../src/authn/issuer-keys.js';
import { KeySetError } from '../../src/authn/key-set-errors.js';
import { KEY_SET_LIMITS, readKeySet, type FetchKeySet } from '../../src/authn/read-key-set.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { IssuerPolicy } from '../../src/policy/compiled-policy.js';
import { demoPolicyText } from '../support/inline-policy.js';
import { createKeySetFetch, type FakeKeySetFetch } from '../support/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../support/manual-clock.js';
import { generateTestKey, type TestKey } from '../support/test-issuer.js';

const JWKS_URI = 'https://idp.example/.well-known/jwks.json';
const TTL_MS = 60_000; // jwks_cache_ttl: 60
const COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10

function issuerWith(settings: { ttl?: number; cooldown?: number; jwksUri?: string } = {}): IssuerPolicy {
  const text = demoPolicyText([], {
    keys: { jwksUri: settings.jwksUri ?? JWKS_URI },
    issuerSettings: {
      jwks_cache_ttl: settings.ttl ?? TTL_MS / 1000,
      jwks_refresh_cooldown: settings.cooldown ?? COOLDOWN_MS / 1000,
    },
  });
  const policy = compilePolicy(text, 'policy.yaml');
  return policy.issuers.get('https://idp.example/')!;
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

beforeEach(() => {
  clock = createManualClock();
  fetch = createKeySetFetch([first.publicJwk]);
  events = [];
});

function issuerKeys(issuer: IssuerPolicy = issuerWith(), fetchKeySet: FetchKeySet = fetch.fetch): IssuerKeys {
  return new IssuerKeys({ issuer, fetchKeySet, now: clock.now, onFetch: (event) => events.push(event) });
}

describe('IssuerKeys: fetching and caching', () => {
  it('fetches nothing until first used, then fetches once', async () => {
    const keys = issuerKeys();

    expect(fetch.calls).toBe(0);
    expect(keys.ready).toBe(false);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(1);
    expect(fetch.urls).toEqual([JWKS_URI]);
    expect(keys.ready).toBe(true);
    expect(events).toEqual([{ issuer: 'https://idp.example/', outcome: 'ok', trigger: 'initial', keys: 1 }]);
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

  it('uses the cached keys until the cache TTL has passed', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');

    clock.advance(TTL_MS - 1);

    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(1);
  });

  it('fetches again once the cache TTL has passed', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');

    clock.advance(TTL_MS);
    expect(await lookUp(keys, 'key-1')).toBe('found');

    expect(fetch.calls).toBe(2);
    expect(events.map((event) => event.trigger)).toEqual(['initial', 'expired']);
  });

  it('lets concurrent uses after expiry share one refetch', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(TTL_MS);
    const held = fetch.holdNext();

    const lookups = [lookUp(keys, 'key-1'), lookUp(keys, 'key-1'), lookUp(keys, 'key-1')];
    await held.started;
    held.release();

    expect(await Promise.all(lookups)).toEqual(['found', 'found', 'found']);
    expect(fetch.calls).toBe(2);
  });

  it('keeps using the stale keys when a refetch fails, and retries only after the cooldown', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(TTL_MS);
    fetch.failWith(500);

    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(keys.ready).toBe(true);
    expect(events[1]).toEqual({
      issuer: 'https://idp.example/',
      outcome: 'error',
      trigger: 'expired',
      error: `${JWKS_URI} answered HTTP 500`,
    });

    clock.advance(COOLDOWN_MS - 1);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(2);

    clock.advance(1);
    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(fetch.calls).toBe(3);
  });

  it('keeps the stale keys also when the refetched set is unusable', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    clock.advance(TTL_MS);
    fetch.publish([]);
    fetch.failWith(new Error('socket hang up'));

    expect(await lookUp(keys, 'key-1')).toBe('found');
    expect(events.at(-1)).toMatchObject({ outcome: 'error', trigger: 'expired', error: 'socket hang up' });
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
    expect(events.at(-1)).toEqual({
      issuer: 'https://idp.example/',
      outcome: 'ok',
      trigger: 'unknown_key',
      keys: 2,
    });
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

  it('drops a key the issuer has withdrawn once the set is refetched', async () => {
    const keys = issuerKeys();
    await lookUp(keys, 'key-1');
    fetch.publish([second.publicJwk]);
    clock.advance(TTL_MS);

    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(await lookUp(keys, 'key-2')).toBe('found');
  });
});

describe('IssuerKeys: while no keys are held', () => {
  it('answers ERR_JWKS_UNAVAILABLE when the first fetch fails', async () => {
    fetch.failWith(new Error('connect ECONNREFUSED 127.0.0.1:443'));
    const keys = issuerKeys();

    const error: unknown = await Promise.resolve()
      .then(() => keys.getKey({ alg: 'RS256', kid: 'key-1' }, { payload: '', signature: '' }))
      .then(
        () => undefined,
        (thrown: unknown) => thrown,
      );

    expect(error).toBeInstanceOf(KeySetError);
    expect(error).toMatchObject({ code: 'ERR_JWKS_UNAVAILABLE', issuer: 'https://idp.example/' });
    expect(keys.ready).toBe(false);
    expect(events).toEqual([
      {
        issuer: 'https://idp.example/',
        outcome: 'error',
        trigger: 'initial',
        error: 'connect ECONNREFUSED 127.0.0.1:443',
      },
    ]);
  });

  it.each([
    ['a 30 s cooldown', 30, 5000],
    ['a 10 s cooldown', 10, 5000],
    ['a 2 s cooldown', 2, 2000],
  ])(
    'with %s (%i s), retries a failed first fetch after min(5 s, cooldown) = %i ms, not sooner',
    async (_case, cooldown, retryMs) => {
      const keys = issuerKeys(issuerWith({ cooldown }));
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
});

describe('IssuerKeys: prefetch and ready', () => {
  it('prefetches the keys once, and not again while they are held', async () => {
    const keys = issuerKeys();

    await keys.prefetch();
    expect(keys.ready).toBe(true);
    await keys.prefetch();
    expect(await lookUp(keys, 'key-1')).toBe('found');

    expect(fetch.calls).toBe(1);
    expect(events).toEqual([expect.objectContaining({ outcome: 'ok', trigger: 'initial' })]);
  });

  it('never throws from prefetch: a failure is an event, and ready stays false', async () => {
    fetch.failWith(500);
    const keys = issuerKeys();

    await expect(keys.prefetch()).resolves.toBeUndefined();

    expect(keys.ready).toBe(false);
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
    expect(keys.ready).toBe(true);
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

  it.each<[string, () => Response, string]>([
    [
      'a non-200 answer',
      () => new Response('{"keys": []}', { status: 404 }),
      `${JWKS_URI} answered HTTP 404`,
    ],
    [
      'a redirect answer',
      () => new Response(null, { status: 302, headers: { location: 'https://evil.example/jwks.json' } }),
      `${JWKS_URI} answered HTTP 302`,
    ],
    [
      'a body over 512 KiB',
      () => new Response(JSON.stringify({ keys: [], padding: huge })),
      `${JWKS_URI} sent more than 524288 bytes`,
    ],
    ['invalid JSON', () => new Response('{"keys": ['), 'the key set is not valid JSON'],
    ['no keys array', () => new Response('{"key": []}'), 'the key set has no "keys" array'],
    [
      'more than 100 keys',
      () => new Response(JSON.stringify({ keys: Array(101).fill({ kty: 'oct' }) })),
      'the key set has more than 100 keys',
    ],
  ])('refuses %s and holds no keys', async (_case, respond, message) => {
    const keys = issuerKeys(issuerWith(), async () => respond());

    expect(await lookUp(keys, 'key-1')).toBe('ERR_JWKS_UNAVAILABLE');
    expect(keys.ready).toBe(false);
    expect(events).toEqual([
      { issuer: 'https://idp.example/', outcome: 'error', trigger: 'initial', error: message },
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

    await expect(readKeySet({ kind: 'file', path }, neverFetch)).rejects.toThrow(new Error(message));
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
