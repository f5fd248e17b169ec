/** What remembering one proof's `jti` found. */
export type ReplayCheck = 'fresh' | 'replayed' | 'full';

/**
 * The `jti` values of DPoP proofs accepted recently, to refuse a proof seen before (RFC 9449 section 11.1),
 * bounded in entries. Per process: workers and replicas each have their own (docs/sender-constraints.md).
 *
 * An entry lives as long as a proof with its `iat` could still be accepted, so forgetting it could not let
 * a replay through; when the cache is full of entries still alive, new proofs are refused ('full') rather
 * than forgetting one early. Only proofs that passed every other check are remembered, so filling it takes
 * valid tokens and their keys.
 */
export class DpopReplayCache {
  /** Key → expiry in milliseconds since the epoch, in insertion order. */
  private readonly entries = new Map<string, number>();

  /** How many entries are held. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Remembers `key` until `expiresAtMs` unless it is remembered already.
   *
   * @param maxEntries the most entries held (the policy's `dpop.replay_cache_size`, read per call so that a
   *   reload changes it without dropping what is remembered).
   */
  remember(key: string, nowMs: number, expiresAtMs: number, maxEntries: number): ReplayCheck {
    const expiry = this.entries.get(key);
    if (expiry !== undefined && expiry > nowMs) return 'replayed';
    if (expiry !== undefined) this.entries.delete(key);
    this.dropExpired(nowMs);
    if (this.entries.size >= maxEntries) this.sweepExpired(nowMs);
    if (this.entries.size >= maxEntries) return 'full';
    this.entries.set(key, expiresAtMs);
    return 'fresh';
  }

  /**
   * Drops expired entries from the oldest on. Windows differ by service, so expiry is not quite in insertion
   * order: an entry behind a longer-lived one waits for it, which only ever keeps entries longer.
   */
  private dropExpired(nowMs: number): void {
    for (const [key, expiry] of this.entries) {
      if (expiry > nowMs) break;
      this.entries.delete(key);
    }
  }

  /** Drops every expired entry, wherever it is: only when the cache is at its limit, as it costs O(n). */
  private sweepExpired(nowMs: number): void {
    for (const [key, expiry] of this.entries) {
      if (expiry <= nowMs) this.entries.delete(key);
    }
  }
}
