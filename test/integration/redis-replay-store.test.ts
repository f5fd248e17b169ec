import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryReplayStore, type ReplayEntry } from '../../src/authn/dpop-replay-store.js';
import {
  MAX_COMMANDS_IN_FLIGHT,
  RedisReplayStore,
  type RedisReplayStoreSettings,
  type ReplayStoreFault,
  type ReplayStoreStateEvent,
} from '../../src/authn/redis-replay-store.js';
import { ensureDevCertificates } from '../../src/demo/dev-tls/dev-certificates.js';
import { ReplayStores } from '../../src/server/replay-stores.js';
import {
  devTlsFor,
  startRedisServer,
  type RedisServer,
  type RedisServerOptions,
} from '../kit/redis-server.js';
import { cleanupAfterEach, suiteTempDir } from '../kit/test-hooks.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * The shared replay store against a real redis-server (test/kit/redis-server.ts): what it answers, that two
 * processes' stores share what they hold, the quotas across them, and what it does while Redis is down,
 * paused or slow: refuse within its timeout (or check locally with fallback: local), say so once, and come
 * back by itself.
 */

const temp = suiteTempDir('authz-redis-store-');
const defer = cleanupAfterEach();

const LIMITS = { total: 100_000, perKey: 1000, perSubject: 1000 };

async function redis(options?: RedisServerOptions): Promise<RedisServer> {
  const server = await startRedisServer(options);
  defer(() => server.stop());
  return server;
}

interface Observed {
  readonly states: ReplayStoreStateEvent[];
  readonly faults: ReplayStoreFault[];
  readonly evictionPolicies: string[];
  readonly historiesBegan: number[];
}

function store(
  url: string,
  settings: Partial<RedisReplayStoreSettings> = {},
): { store: RedisReplayStore; local: MemoryReplayStore; seen: Observed } {
  const seen: Observed = { states: [], faults: [], evictionPolicies: [], historiesBegan: [] };
  const local = new MemoryReplayStore();
  const replayStore = new RedisReplayStore(
    {
      type: 'redis',
      url: { given: url },
      caFile: undefined,
      keyPrefix: 'test:',
      timeoutMs: 200,
      fallback: 'none',
      ...settings,
    },
    local,
    {
      onState: (event) => seen.states.push(event),
      onFault: (cause) => seen.faults.push(cause),
      onEvictionPolicy: (policy) => seen.evictionPolicies.push(policy),
      onHistoryBegan: (sinceMs) => seen.historiesBegan.push(sinceMs),
    },
  );
  defer(() => replayStore.close());
  return { store: replayStore, local, seen };
}

let counter = 0;
function entry(overrides: Partial<ReplayEntry> = {}): ReplayEntry {
  counter += 1;
  return {
    keyThumbprint: 'key-a',
    jti: `jti-${counter}-${Math.random()}`,
    subject: 'https://issuer.example user-1',
    issuedAtMs: Date.now(),
    acceptableUntilMs: Date.now() + 70_000,
    ...overrides,
  };
}

async function ready(replayStore: RedisReplayStore): Promise<void> {
  await replayStore.firstAttempt;
  expect(replayStore.up).toBe(true);
}

describe('RedisReplayStore against a real Redis', () => {
  it('answers fresh once and replayed after, to this process and to another one sharing the Redis', async () => {
    const server = await redis();
    const a = store(server.url);
    const b = store(server.url);
    await Promise.all([ready(a.store), ready(b.store)]);

    const proof = entry();
    expect(await a.store.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'fresh' });
    expect(await a.store.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'replayed' });
    expect(await b.store.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'replayed' });
    // The same jti under another key is another proof (the entry is the pair).
    expect(await b.store.claim({ ...proof, keyThumbprint: 'key-b' }, Date.now(), LIMITS)).toEqual({
      kind: 'fresh',
    });
    expect(a.seen.states).toEqual([{ state: 'available', address: server.url, fallback: 'none' }]);
    expect(a.local.size).toBe(0);
  });

  it('holds an entry in Redis until its proof window has closed, under the prefix, never the jti itself', async () => {
    const server = await redis();
    const { store: replayStore } = store(server.url, { keyPrefix: 'tenant-a:' });
    await ready(replayStore);
    const proof = entry({ jti: 'a-visible-jti', acceptableUntilMs: Date.now() + 30_000 });
    expect(await replayStore.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'fresh' });

    const keys = (await server.command('KEYS', '*')) as string[];
    expect(keys.every((key) => key.startsWith('tenant-a:'))).toBe(true);
    expect(keys.some((key) => key.includes('a-visible-jti'))).toBe(false);
    const entryKey = keys.find((key) => key.startsWith('tenant-a:jti:'));
    expect(entryKey).toBeDefined();
    const ttl = Number(await server.command('PTTL', entryKey!));
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_001);
  });

  it('keeps each key and each subject within its share across processes, with when to retry', async () => {
    const server = await redis();
    const a = store(server.url);
    const b = store(server.url);
    await Promise.all([ready(a.store), ready(b.store)]);
    const limits = { total: 100_000, perKey: 3, perSubject: 5 };
    const now = Date.now();

    for (const s of [a, b, a]) {
      expect(await s.store.claim(entry({ keyThumbprint: 'k1', subject: 'u1' }), now, limits)).toEqual({
        kind: 'fresh',
      });
    }
    const overKey = await b.store.claim(entry({ keyThumbprint: 'k1', subject: 'u1' }), now, limits);
    expect(overKey).toMatchObject({ kind: 'over_quota', share: 'key' });
    expect((overKey as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThanOrEqual(60);
    expect((overKey as { retryAfterSeconds: number }).retryAfterSeconds).toBeLessThanOrEqual(71);

    // Another key of the same user: its own key share is empty, the user's holds 3 of 5.
    for (const s of [a, b]) {
      expect(await s.store.claim(entry({ keyThumbprint: 'k2', subject: 'u1' }), now, limits)).toEqual({
        kind: 'fresh',
      });
    }
    expect(await a.store.claim(entry({ keyThumbprint: 'k2', subject: 'u1' }), now, limits)).toMatchObject({
      kind: 'over_quota',
      share: 'subject',
    });
    // Everyone else keeps their own share.
    expect(await a.store.claim(entry({ keyThumbprint: 'k3', subject: 'u2' }), now, limits)).toEqual({
      kind: 'fresh',
    });
    // A token without a subject counts against its key only.
    expect(await a.store.claim(entry({ keyThumbprint: 'k4', subject: undefined }), now, limits)).toEqual({
      kind: 'fresh',
    });
  });

  it('frees a share as its entries expire', async () => {
    const server = await redis();
    const { store: replayStore } = store(server.url);
    await ready(replayStore);
    const limits = { total: 100_000, perKey: 1, perSubject: 10 };
    // The shortest hold is one second.
    expect(
      await replayStore.claim(
        entry({ keyThumbprint: 'k', acceptableUntilMs: Date.now() }),
        Date.now(),
        limits,
      ),
    ).toEqual({ kind: 'fresh' });
    expect(await replayStore.claim(entry({ keyThumbprint: 'k' }), Date.now(), limits)).toMatchObject({
      kind: 'over_quota',
      retryAfterSeconds: 1,
    });
    await waitUntil(
      async () =>
        (await replayStore.claim(entry({ keyThumbprint: 'k' }), Date.now(), limits)).kind === 'fresh',
      (done) => done,
      { timeoutMs: 5000, what: 'the share freed' },
    );
  });

  it('refuses at once while Redis is down, says so once, and comes back by itself', async () => {
    const server = await redis();
    const { store: replayStore, seen } = store(server.url);
    await ready(replayStore);

    await server.kill();
    await waitUntil(
      () => !replayStore.up,
      (done) => done,
      { timeoutMs: 5000, what: 'the store noticed' },
    );
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      expect(await replayStore.claim(entry(), Date.now(), LIMITS)).toEqual({ kind: 'unavailable' });
    }
    // None waited for a timeout (their cause says so); the bound only says none waited for Redis to return.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(seen.faults.filter((cause) => cause === 'disconnected')).toHaveLength(20);
    expect(seen.states.filter((event) => event.state === 'unavailable')).toHaveLength(1);
    expect(seen.states.at(-1)).toMatchObject({ state: 'unavailable', cause: 'disconnected' });

    await server.restart();
    await waitUntil(
      () => replayStore.up,
      (done) => done,
      { timeoutMs: 5000, what: 'reconnected' },
    );
    const proof = entry();
    expect(await replayStore.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'fresh' });
    expect(await replayStore.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'replayed' });
    // Said once the 5 s dwell after the unavailable line has passed, with or without traffic.
    await waitUntil(
      () => seen.states.at(-1)?.state,
      (state) => state === 'available',
      { timeoutMs: 8000, what: 'the available line' },
    );
    expect(seen.states.map((event) => event.state)).toEqual(['available', 'unavailable', 'available']);
  });

  it('after Redis lost its data, refuses proofs issued before its new history began, and takes later ones', async () => {
    const server = await redis();
    const { store: replayStore, seen } = store(server.url);
    await ready(replayStore);
    // A history that began a minute ago, as on a Redis that has been up for a while.
    await server.command('SET', 'test:since', String(Date.now() - 60_000));
    const before = entry({ issuedAtMs: Date.now() - 5000 });
    expect(await replayStore.claim(before, Date.now(), LIMITS)).toEqual({ kind: 'fresh' });
    expect(seen.historiesBegan).toEqual([]);

    await server.kill(); // no persistence: the restarted Redis has forgotten `before`
    await server.restart();
    await waitUntil(
      () => replayStore.up,
      (up) => up,
      { timeoutMs: 5000, what: 'reconnected' },
    );
    const restartedAt = Date.now();
    // Whether `before` was seen is lost with the old history: refused, never taken as fresh.
    expect(await replayStore.claim(before, Date.now(), LIMITS)).toEqual({ kind: 'unavailable' });
    expect(seen.historiesBegan).toHaveLength(1);
    expect(seen.historiesBegan[0]).toBeGreaterThanOrEqual(restartedAt - 1000);
    // Not a fault of the store, and not answered locally: Redis answered.
    expect(seen.faults).toEqual([]);
    // A proof the client makes now passes, once.
    const after = entry();
    expect(await replayStore.claim(after, Date.now(), LIMITS)).toEqual({ kind: 'fresh' });
    expect(await replayStore.claim(after, Date.now(), LIMITS)).toEqual({ kind: 'replayed' });
    expect(seen.historiesBegan).toHaveLength(1);
  });

  it('answers within its timeout while Redis is paused, and never holds more than its bound of commands', async () => {
    const server = await redis();
    const { store: replayStore, seen } = store(server.url, { timeoutMs: 100 });
    await ready(replayStore);
    // Shares wide enough for every command that timed out, which Redis still runs once it wakes up.
    const WIDE = { total: 100_000, perKey: 100_000, perSubject: 100_000 };

    server.pause();
    defer(() => server.resume());
    const started = performance.now();
    const claims = await Promise.all(
      Array.from({ length: MAX_COMMANDS_IN_FLIGHT + 50 }, () => replayStore.claim(entry(), Date.now(), WIDE)),
    );
    const elapsed = performance.now() - started;
    expect(claims.every((claim) => claim.kind === 'unavailable')).toBe(true);
    // Ended by their own timeout (the causes say so), not by the pause, which lasts until resume() below.
    expect(elapsed).toBeLessThan(5000);
    expect(seen.faults.filter((cause) => cause === 'busy')).toHaveLength(50);
    expect(seen.faults.filter((cause) => cause === 'timeout')).toHaveLength(MAX_COMMANDS_IN_FLIGHT);
    expect(seen.states.at(-1)).toMatchObject({ state: 'unavailable', cause: 'timeout' });

    server.resume();
    // The commands that timed out still ran once Redis woke up (the shares are wide enough for them).
    await waitUntil(
      async () =>
        (await replayStore.claim(entry({ keyThumbprint: 'key-b' }), Date.now(), WIDE)).kind === 'fresh',
      (done) => done,
      { timeoutMs: 10_000, what: 'answers again after the pause' },
    );
  });

  it('with fallback: local, checks proofs against its own store while Redis is down', async () => {
    const server = await redis();
    const { store: replayStore, local, seen } = store(server.url, { fallback: 'local' });
    await ready(replayStore);
    await server.kill();
    await waitUntil(
      () => !replayStore.up,
      (done) => done,
      { timeoutMs: 5000, what: 'the store noticed' },
    );

    const proof = entry();
    expect(await replayStore.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'fresh' });
    expect(await replayStore.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'replayed' });
    expect(local.size).toBe(1);
    expect(seen.states.at(-1)).toMatchObject({ state: 'unavailable', fallback: 'local' });
  });

  it('reads its URL, password included, from url_file, and never says the password', async () => {
    const server = await redis({ password: 's3cret-pass' });
    const file = path.join(temp.dir, 'redis-url');
    writeFileSync(file, `${server.urlWithPassword()}\n`);
    const { store: replayStore, seen } = store('unused', { url: { file } });
    await ready(replayStore);
    expect(await replayStore.claim(entry(), Date.now(), LIMITS)).toEqual({ kind: 'fresh' });
    expect(JSON.stringify(seen)).not.toContain('s3cret-pass');

    // A wrong password: refused by Redis, said without the password.
    const wrong = path.join(temp.dir, 'wrong-url');
    writeFileSync(wrong, server.urlWithPassword().replace('s3cret-pass', 'not-the-pass'));
    const refused = store('unused', { url: { file: wrong } });
    await refused.store.firstAttempt;
    expect(await refused.store.claim(entry(), Date.now(), LIMITS)).toEqual({ kind: 'unavailable' });
    expect(refused.seen.states[0]).toMatchObject({ state: 'unavailable', cause: 'disconnected' });
    expect(JSON.stringify(refused.seen)).not.toContain('not-the-pass');
  });

  it('speaks TLS to a rediss:// URL, trusting ca_file, and refuses a server its roots do not sign', async () => {
    const certificates = await ensureDevCertificates(temp.dir);
    const server = await redis({
      tls: devTlsFor(certificates),
    });
    expect(server.url).toMatch(/^rediss:/);
    const trusting = store(server.url, { caFile: certificates.ca.cert });
    await ready(trusting.store);
    const proof = entry();
    expect(await trusting.store.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'fresh' });
    expect(await trusting.store.claim(proof, Date.now(), LIMITS)).toEqual({ kind: 'replayed' });

    // Node's own roots do not sign the development CA: never connected, every proof refused.
    const doubting = store(server.url);
    await doubting.store.firstAttempt;
    expect(doubting.store.up).toBe(false);
    expect(await doubting.store.claim(entry(), Date.now(), LIMITS)).toEqual({ kind: 'unavailable' });
    expect(doubting.seen.states[0]).toMatchObject({
      state: 'unavailable',
      cause: 'disconnected',
      detail: expect.stringMatching(/self-signed|unable to (get|verify)/i),
    });
  });

  it('refuses every proof when url_file cannot be used, naming the file but not its content', async () => {
    const missing = store('unused', { url: { file: path.join(temp.dir, 'absent') } });
    expect(await missing.store.claim(entry(), Date.now(), LIMITS)).toEqual({ kind: 'unavailable' });
    expect(missing.seen.states).toEqual([
      expect.objectContaining({
        state: 'unavailable',
        cause: 'settings',
        detail: expect.stringContaining('ENOENT'),
      }),
    ]);

    const file = path.join(temp.dir, 'bad-url');
    writeFileSync(file, 'http://user:hidden-pass@redis.example:6379');
    const bad = store('unused', { url: { file } });
    expect(await bad.store.claim(entry(), Date.now(), LIMITS)).toEqual({ kind: 'unavailable' });
    expect(bad.seen.states[0]).toMatchObject({ cause: 'settings' });
    expect(bad.seen.states[0]!.detail).toContain('redis:// or rediss://');
    expect(JSON.stringify(bad.seen)).not.toContain('hidden-pass');
  });

  it('warns once when Redis may evict its entries', async () => {
    const server = await redis();
    await server.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    const { store: replayStore, seen } = store(server.url);
    await ready(replayStore);
    await waitUntil(
      () => seen.evictionPolicies.length > 0,
      (done) => done,
      { timeoutMs: 5000, what: 'the warning' },
    );
    expect(seen.evictionPolicies).toEqual(['allkeys-lru']);
  });
});

describe('ReplayStores: the stores of one process across policy versions', () => {
  const hooks = {
    onState: () => undefined,
    onFault: () => undefined,
    onEvictionPolicy: () => undefined,
    onHistoryBegan: () => undefined,
  };
  const redisSettings = (url: string, keyPrefix = 'p:'): RedisReplayStoreSettings => ({
    type: 'redis',
    url: { given: url },
    caFile: undefined,
    keyPrefix,
    timeoutMs: 200,
    fallback: 'none',
  });
  /** How many connections the replay stores hold open to `server` (each names itself). */
  const connections = async (server: RedisServer): Promise<number> =>
    String(await server.command('CLIENT', 'LIST'))
      .split('\n')
      .filter((line) => line.includes('name=authz-dpop-replay')).length;

  it('keeps one connection while the settings stay, opens the new one when they change, and closes the old', async () => {
    const server = await redis();
    const stores = new ReplayStores(hooks);
    defer(() => stores.close());

    expect(stores.forPolicy({ type: 'memory' })).toBe(stores.local);
    const first = stores.forPolicy(redisSettings(server.url));
    expect(stores.forPolicy(redisSettings(server.url))).toBe(first);
    await stores.firstAttempt();
    expect(stores.up).toBe(true);
    expect(await connections(server)).toBe(1);

    const second = stores.forPolicy(redisSettings(server.url, 'q:'));
    expect(second).not.toBe(first);
    await stores.firstAttempt();
    expect(await connections(server)).toBe(2); // the old one is kept for Checks begun before the reload
    await waitUntil(
      () => connections(server),
      (count) => count === 1,
      { timeoutMs: 5000, what: 'the old connection closed after its grace period' },
    );

    expect(stores.forPolicy({ type: 'memory' })).toBe(stores.local);
    expect(stores.up).toBe(true);
    await stores.close();
    await waitUntil(
      () => connections(server),
      (count) => count === 0,
      { timeoutMs: 5000, what: 'every connection closed' },
    );
  });
});
