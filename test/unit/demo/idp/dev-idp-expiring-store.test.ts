import { describe, expect, it } from 'vitest';
import { ExpiringStore } from '../../../../src/demo/idp/expiring-store.js';
import { createManualClock } from '../../../kit/manual-clock.js';

describe('ExpiringStore', () => {
  it('stores under distinct 32-byte base64url ids', () => {
    const store = new ExpiringStore<number>(createManualClock().now, { capacity: 100, ttlMs: 1000 });
    const ids = new Set(Array.from({ length: 50 }, (_, i) => store.add(i)));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('expires entries after the TTL', () => {
    const clock = createManualClock();
    const store = new ExpiringStore<string>(clock.now, { capacity: 10, ttlMs: 60_000 });
    const id = store.add('grant');
    clock.advance(59_999);
    expect(store.get(id)).toBe('grant');
    clock.advance(1);
    expect(store.get(id)).toBeUndefined();
  });

  it('takes an entry once', () => {
    const store = new ExpiringStore<string>(createManualClock().now, { capacity: 10, ttlMs: 1000 });
    const id = store.add('code');
    expect(store.take(id)).toBe('code');
    expect(store.take(id)).toBeUndefined();
    expect(store.get(id)).toBeUndefined();
  });

  it('evicts the oldest entry at capacity, and sweeps expired ones first', () => {
    const clock = createManualClock();
    const store = new ExpiringStore<number>(clock.now, { capacity: 3, ttlMs: 1000 });
    const [first, second, third] = [store.add(1), store.add(2), store.add(3)];
    const fourth = store.add(4);
    expect(store.get(first)).toBeUndefined();
    expect([store.get(second), store.get(third), store.get(fourth)]).toEqual([2, 3, 4]);
    expect(store.size).toBe(3);
    clock.advance(1000);
    store.add(5);
    expect(store.size).toBe(1);
  });
});
