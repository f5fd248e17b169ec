import { describe, expect, it } from 'vitest';
import { DpopReplayCache } from '../../src/authn/dpop-replay-cache.js';

// The jti values of accepted DPoP proofs (RFC 9449 section 11.1): an entry lives until its expiry, a key seen
// again before then is a replay, and a cache full of live entries refuses rather than forgets (fail closed).

const T0 = Date.UTC(2030, 0, 1);
const SECOND = 1000;
const MANY = 1000;

describe('DpopReplayCache', () => {
  it('answers fresh for a new key and remembers it', () => {
    const cache = new DpopReplayCache();
    expect(cache.size).toBe(0);
    expect(cache.remember('jkt-1 jti-1', T0, T0 + 60 * SECOND, MANY)).toBe('fresh');
    expect(cache.size).toBe(1);
  });

  it('answers replayed for a key seen before, until its expiry', () => {
    const cache = new DpopReplayCache();
    cache.remember('k', T0, T0 + 60 * SECOND, MANY);
    expect(cache.remember('k', T0, T0 + 60 * SECOND, MANY)).toBe('replayed');
    expect(cache.remember('k', T0 + 60 * SECOND - 1, T0 + 120 * SECOND, MANY)).toBe('replayed');
    expect(cache.size).toBe(1);
  });

  it('answers fresh again at the expiry instant (an entry lives while expiry > now)', () => {
    const cache = new DpopReplayCache();
    cache.remember('k', T0, T0 + 60 * SECOND, MANY);
    expect(cache.remember('k', T0 + 60 * SECOND, T0 + 120 * SECOND, MANY)).toBe('fresh');
    expect(cache.remember('k', T0 + 60 * SECOND, T0 + 120 * SECOND, MANY)).toBe('replayed');
    expect(cache.size).toBe(1);
  });

  it('does not extend an entry when it is replayed', () => {
    const cache = new DpopReplayCache();
    cache.remember('k', T0, T0 + 10 * SECOND, MANY);
    expect(cache.remember('k', T0 + 5 * SECOND, T0 + 600 * SECOND, MANY)).toBe('replayed');
    expect(cache.remember('k', T0 + 10 * SECOND, T0 + 20 * SECOND, MANY)).toBe('fresh');
  });

  it('keeps keys apart: the same jti under another thumbprint is fresh', () => {
    const cache = new DpopReplayCache();
    expect(cache.remember('jkt-A jti', T0, T0 + 60 * SECOND, MANY)).toBe('fresh');
    expect(cache.remember('jkt-B jti', T0, T0 + 60 * SECOND, MANY)).toBe('fresh');
    expect(cache.size).toBe(2);
  });

  it('answers full, and remembers nothing, when every entry is still alive', () => {
    const cache = new DpopReplayCache();
    expect(cache.remember('a', T0, T0 + 60 * SECOND, 2)).toBe('fresh');
    expect(cache.remember('b', T0, T0 + 60 * SECOND, 2)).toBe('fresh');
    expect(cache.remember('c', T0, T0 + 60 * SECOND, 2)).toBe('full');
    expect(cache.size).toBe(2);
    // 'c' was not remembered: once there is room, it is fresh.
    expect(cache.remember('c', T0 + 60 * SECOND, T0 + 120 * SECOND, 2)).toBe('fresh');
  });

  it('still answers replayed, not full, for a key it holds when full', () => {
    const cache = new DpopReplayCache();
    cache.remember('a', T0, T0 + 60 * SECOND, 1);
    expect(cache.remember('a', T0, T0 + 60 * SECOND, 1)).toBe('replayed');
  });

  it('drops expired entries to make room', () => {
    const cache = new DpopReplayCache();
    cache.remember('a', T0, T0 + 10 * SECOND, 2);
    cache.remember('b', T0, T0 + 20 * SECOND, 2);
    expect(cache.remember('c', T0 + 10 * SECOND, T0 + 70 * SECOND, 2)).toBe('fresh'); // 'a' expired
    expect(cache.size).toBe(2);
    expect(cache.remember('a', T0 + 10 * SECOND, T0 + 70 * SECOND, 2)).toBe('full'); // 'b', 'c' alive
    expect(cache.remember('d', T0 + 20 * SECOND, T0 + 80 * SECOND, 2)).toBe('fresh'); // 'b' expired
  });

  it('drops every expired entry, not only what one insertion needs', () => {
    const cache = new DpopReplayCache();
    for (let i = 0; i < 10; i++) cache.remember(`old-${i}`, T0, T0 + SECOND, MANY);
    cache.remember('new', T0 + 2 * SECOND, T0 + 60 * SECOND, MANY);
    expect(cache.size).toBe(1);
  });

  it('reads maxEntries per call: a lower size refuses new keys without forgetting, a higher one makes room', () => {
    const cache = new DpopReplayCache();
    for (const key of ['a', 'b', 'c']) cache.remember(key, T0, T0 + 60 * SECOND, 10);
    expect(cache.remember('d', T0, T0 + 60 * SECOND, 2)).toBe('full');
    expect(cache.remember('a', T0, T0 + 60 * SECOND, 2)).toBe('replayed');
    expect(cache.size).toBe(3);
    expect(cache.remember('d', T0, T0 + 60 * SECOND, 4)).toBe('fresh');
  });

  it('answers full for a maxEntries of 0', () => {
    expect(new DpopReplayCache().remember('a', T0, T0 + SECOND, 0)).toBe('full');
  });

  // Windows differ by service (max_age) and by iat, so entries do not expire in insertion order. An expired
  // entry behind a longer-lived one must not count as live: the cache is documented to refuse only "when
  // the cache is full of entries still alive".
  it('is not full when an expired entry waits behind a longer-lived one', () => {
    const cache = new DpopReplayCache();
    expect(cache.remember('long', T0, T0 + 600 * SECOND, 2)).toBe('fresh'); // max_age 10m
    expect(cache.remember('short', T0, T0 + 10 * SECOND, 2)).toBe('fresh'); // max_age 10s
    // At T0 + 20 s only 'long' is alive: one live entry of two allowed.
    expect(cache.remember('next', T0 + 20 * SECOND, T0 + 30 * SECOND, 2)).toBe('fresh');
  });
});
