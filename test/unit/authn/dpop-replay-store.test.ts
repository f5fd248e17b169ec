import { describe, expect, it } from 'vitest';
import {
  MemoryReplayStore,
  type ReplayEntry,
  type ReplayLimits,
} from '../../../src/authn/dpop-replay-store.js';

// The jti values of accepted DPoP proofs (RFC 9449 section 11.1): a jti held is a replay for as long as a
// proof with its iat could be accepted; each key and each user holds at most its share, so that one client
// flooding with valid proofs is refused while every other client keeps working; a store full of live
// entries refuses rather than forgets (fail closed). Entries expire by whole seconds, in buckets.

const T0 = Date.UTC(2030, 0, 1);
const SECOND = 1000;
const ROOMY: ReplayLimits = { total: 1_000_000, perKey: 1_000_000, perSubject: 1_000_000 };

let jtis = 0;
const entry = (overrides: Partial<ReplayEntry> = {}): ReplayEntry => ({
  keyThumbprint: 'key-A',
  jti: `jti-${++jtis}`,
  subject: 'https://idp.example/ alice',
  issuedAtMs: T0,
  acceptableUntilMs: T0 + 60 * SECOND,
  ...overrides,
});

describe('MemoryReplayStore: replays', () => {
  it('answers fresh for a new jti and remembers it', () => {
    const store = new MemoryReplayStore();
    expect(store.size).toBe(0);
    expect(store.claim(entry(), T0, ROOMY)).toEqual({ kind: 'fresh' });
    expect(store.size).toBe(1);
  });

  it('answers replayed for a jti of the same key, as long as the proof could still be accepted', () => {
    const store = new MemoryReplayStore();
    const first = entry();
    store.claim(first, T0, ROOMY);
    expect(store.claim(first, T0, ROOMY)).toEqual({ kind: 'replayed' });
    expect(store.claim(first, first.acceptableUntilMs, ROOMY)).toEqual({ kind: 'replayed' });
    expect(store.size).toBe(1);
  });

  it('forgets it only once the second after the proof stopped being acceptable has begun', () => {
    const store = new MemoryReplayStore();
    const first = entry({ acceptableUntilMs: T0 + 10 * SECOND + 400 });
    store.claim(first, T0, ROOMY);
    expect(store.claim(first, T0 + 10 * SECOND + 999, ROOMY)).toEqual({ kind: 'replayed' });
    expect(store.claim(first, T0 + 11 * SECOND, ROOMY)).toEqual({ kind: 'fresh' });
  });

  it('keeps keys apart: the same jti from another key is fresh', () => {
    const store = new MemoryReplayStore();
    expect(store.claim(entry({ jti: 'j' }), T0, ROOMY)).toEqual({ kind: 'fresh' });
    expect(store.claim(entry({ jti: 'j', keyThumbprint: 'key-B' }), T0, ROOMY)).toEqual({ kind: 'fresh' });
    expect(store.size).toBe(2);
  });

  it('never forgets early, and always forgets within a second, whatever the windows and the order (a model)', () => {
    // A seeded walk through time with mixed windows, checked against a plain map of jti -> acceptable until.
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const store = new MemoryReplayStore();
    const model = new Map<string, number>();
    let now = T0;
    for (let step = 0; step < 5000; step++) {
      now += Math.floor(random() * 700); // up to 0.7 s per step
      const jti = `j${Math.floor(random() * 400)}`;
      const window = [2, 10, 60, 600][Math.floor(random() * 4)]! * SECOND;
      const acceptableUntilMs = now + window - Math.floor(random() * SECOND);
      const until = model.get(jti);
      const claim = store.claim(entry({ jti, acceptableUntilMs }), now, ROOMY);
      if (until !== undefined && now <= until) {
        expect(claim, `step ${step}: ${jti} acceptable until ${until}, now ${now}`).toEqual({
          kind: 'replayed',
        });
      } else if (until === undefined || now >= (Math.floor(until / SECOND) + 1) * SECOND) {
        expect(claim, `step ${step}: ${jti} acceptable until ${until}, now ${now}: gone`).toEqual({
          kind: 'fresh',
        });
      }
      if (claim.kind === 'fresh') model.set(jti, acceptableUntilMs);
    }
  });

  it('drops everything at once after an idle spell longer than every window, and holds on when the clock goes back', () => {
    const store = new MemoryReplayStore();
    for (let i = 0; i < 100; i++) store.claim(entry(), T0, ROOMY);
    expect(store.size).toBe(100);
    const kept = entry();
    store.claim(kept, T0, ROOMY);
    expect(store.claim(kept, T0 - 3600 * SECOND, ROOMY)).toEqual({ kind: 'replayed' }); // clock back: kept
    store.claim(entry(), T0 + 24 * 3600 * SECOND, ROOMY);
    expect(store.size).toBe(1);
  });
});

describe('MemoryReplayStore: shares (the cost stays with the client that causes it)', () => {
  const limits: ReplayLimits = { total: 1000, perKey: 3, perSubject: 5 };

  it('refuses a key over its share, with the seconds until its oldest entry expires, while other keys go on', () => {
    const store = new MemoryReplayStore();
    const first = entry({ acceptableUntilMs: T0 + 30 * SECOND });
    store.claim(first, T0, limits);
    store.claim(entry({ acceptableUntilMs: T0 + 40 * SECOND }), T0 + 5 * SECOND, limits);
    store.claim(entry({ acceptableUntilMs: T0 + 50 * SECOND }), T0 + 6 * SECOND, limits);

    expect(store.claim(entry(), T0 + 10 * SECOND, limits)).toEqual({
      kind: 'over_quota',
      share: 'key',
      retryAfterSeconds: 21, // the first entry is held until T0 + 31 s
    });
    expect(store.claim(entry({ keyThumbprint: 'key-B', subject: 'bob' }), T0 + 10 * SECOND, limits)).toEqual({
      kind: 'fresh',
    });
    // A replay is still a replay, whatever the share.
    expect(store.claim(first, T0 + 10 * SECOND, limits)).toEqual({ kind: 'replayed' });
    // Once the oldest entry has gone, the key has room for one more.
    expect(store.claim(entry(), T0 + 31 * SECOND, limits)).toEqual({ kind: 'fresh' });
    expect(store.claim(entry(), T0 + 31 * SECOND, limits)).toMatchObject({
      kind: 'over_quota',
      share: 'key',
    });
  });

  it("refuses a user whose keys together hold the user's share, while other users go on", () => {
    const store = new MemoryReplayStore();
    for (const key of ['k1', 'k2']) {
      for (let i = 0; i < (key === 'k1' ? 3 : 2); i++) store.claim(entry({ keyThumbprint: key }), T0, limits);
    }
    expect(store.claim(entry({ keyThumbprint: 'k3' }), T0, limits)).toMatchObject({
      kind: 'over_quota',
      share: 'subject',
    });
    expect(store.claim(entry({ keyThumbprint: 'k3', subject: 'bob' }), T0, limits)).toEqual({
      kind: 'fresh',
    });
    // A token without a subject counts against its key alone.
    expect(store.claim(entry({ keyThumbprint: 'k4', subject: undefined }), T0, limits)).toEqual({
      kind: 'fresh',
    });
  });

  it('answers full, and remembers nothing, only when the store as a whole is full of live entries', () => {
    const store = new MemoryReplayStore();
    const small: ReplayLimits = { total: 2, perKey: 2, perSubject: 2 };
    expect(store.claim(entry({ keyThumbprint: 'a', subject: 'a' }), T0, small)).toEqual({ kind: 'fresh' });
    expect(store.claim(entry({ keyThumbprint: 'b', subject: 'b' }), T0, small)).toEqual({ kind: 'fresh' });
    const third = entry({ keyThumbprint: 'c', subject: 'c' });
    expect(store.claim(third, T0, small)).toEqual({ kind: 'full' });
    expect(store.size).toBe(2);
    expect(store.claim(third, T0 + 61 * SECOND, small)).toEqual({ kind: 'fresh' });
  });

  it('one key flooding 100,000 proofs in 10 s holds its share and no more: every other key still gets in', () => {
    const store = new MemoryReplayStore();
    const big: ReplayLimits = { total: 100_000, perKey: 2000, perSubject: 5000 };
    let refused = 0;
    for (let i = 0; i < 100_000; i++) {
      const claim = store.claim(entry({ keyThumbprint: 'flooder', subject: 'mallory' }), T0 + i / 10, big);
      if (claim.kind === 'over_quota') refused++;
    }
    expect(refused).toBe(98_000);
    expect(store.size).toBe(2000);
    for (let user = 0; user < 100; user++) {
      expect(
        store.claim(entry({ keyThumbprint: `k${user}`, subject: `u${user}` }), T0 + 100_000, big),
      ).toEqual({
        kind: 'fresh',
      });
    }
  });
});
