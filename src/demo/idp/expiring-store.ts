import { randomBytes } from 'node:crypto';

/** Limits of an `ExpiringStore`. Development only. */
export interface ExpiringStoreLimits {
  /** Entries kept at most; the oldest is evicted to make room. */
  readonly capacity: number;
  /** How long an entry lives, in milliseconds. */
  readonly ttlMs: number;
}

interface Entry<V> {
  readonly value: V;
  readonly expiresAtMs: number;
}

/**
 * Values held in memory under unguessable ids (32 random bytes, base64url): pending sign-ins, authorization
 * codes, login sessions. Bounded and expiring, because anyone who can reach the provider can create entries.
 * Every entry lives equally long, so insertion order is expiry order and a sweep stops at the first live
 * entry. Development only.
 */
export class ExpiringStore<V> {
  private readonly entries = new Map<string, Entry<V>>(); // insertion order: oldest first

  constructor(
    private readonly now: () => number,
    private readonly limits: ExpiringStoreLimits,
  ) {}

  /** Stores `value` under a new random id and returns the id. */
  add(value: V): string {
    this.sweepExpired();
    while (this.entries.size >= this.limits.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    this.entries.set(id, { value, expiresAtMs: this.now() + this.limits.ttlMs });
    return id;
  }

  /** The live value under `id`; undefined if it was never stored, was removed, evicted or has expired. */
  get(id: string): V | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.expiresAtMs) {
      this.entries.delete(id);
      return undefined;
    }
    return entry.value;
  }

  /** Removes and returns the live value under `id`: for single-use entries. */
  take(id: string): V | undefined {
    const value = this.get(id);
    this.entries.delete(id);
    return value;
  }

  delete(id: string): void {
    this.entries.delete(id);
  }

  /** Entries held (expired ones may still count until the next `add`). */
  get size(): number {
    return this.entries.size;
  }

  private sweepExpired(): void {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (now < entry.expiresAtMs) return;
      this.entries.delete(id);
    }
  }
}
