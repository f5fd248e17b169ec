import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import type { IssuerPolicy } from '../policy/compiled-policy.js';
import { KeySetError } from './key-set-errors.js';
import { readKeySet, type FetchKeySet } from './read-key-set.js';

/** What happened to one attempt at obtaining a key set: for logs and metrics. */
export interface KeySetFetchEvent {
  readonly issuer: string;
  readonly outcome: 'ok' | 'error';
  /** Why it was fetched. */
  readonly trigger: 'initial' | 'expired' | 'unknown_key';
  readonly keys?: number;
  readonly error?: string;
}

export interface IssuerKeysOptions {
  readonly issuer: IssuerPolicy;
  readonly fetchKeySet: FetchKeySet;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now: () => number;
  readonly onFetch?: (event: KeySetFetchEvent) => void;
}

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

/** While no keys are held, a failed fetch is retried after at most this long (ms), whatever the cooldown. */
const EMPTY_RETRY_MS = 5000; // 5 seconds
/** The least time between any two fetches, whatever triggered them. */
const MIN_FETCH_GAP_MS = 1000; // 1 second

/**
 * One issuer's verification keys: fetched on first use (or prefetched), cached for `jwks_cache_ttl`, and
 * fetched again for a token whose `kid` is unknown (key rotation) — such refetches at most once per
 * `jwks_refresh_cooldown`, and no fetch of any kind within a second of the previous one. The first rotation
 * after start-up is therefore picked up at once, while a stream of made-up `kid`s costs the issuer at most
 * one request per cooldown. Concurrent requests share one fetch. Keys are found only by the token's `kid`
 * and `alg` in this set; `jku`, `x5u` and embedded `jwk` header parameters are never followed.
 */
export class IssuerKeys {
  private keySet: LocalKeySet | undefined;
  private fetchedAt = 0;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastUnknownKeyFetchAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private generationCount = 0;
  /** The key set last obtained, serialised: to tell a changed set from the same one fetched again. */
  private keySetJson: string | undefined;

  constructor(private readonly options: IssuerKeysOptions) {}

  /**
   * Which key set is held: 0 before any, then one more each time a fetch brings a set that differs from the
   * one held (a key added, removed or changed). Fetching the same set again leaves it as it is. A token
   * verified under an older generation may have been verified with a key that is gone.
   */
  get generation(): number {
    return this.generationCount;
  }

  /**
   * Whether using the keys now would first fetch them (none held, or `jwks_cache_ttl` has passed, and no
   * cooldown forbids a fetch), as `getKey` would. A verification remembered from earlier must not stand in
   * for `getKey` then, or a key removed from the issuer's set would never be noticed.
   */
  get refreshDue(): boolean {
    const expired =
      this.keySet === undefined ||
      this.options.now() - this.fetchedAt >= this.options.issuer.jwksCacheTtlSeconds * 1000;
    return expired && this.mayFetch();
  }

  /** The issuer configuration these keys belong to. */
  get issuer(): IssuerPolicy {
    return this.options.issuer;
  }

  /** A jose key resolver for `jwtVerify`. Throws `KeySetError` (`ERR_JWKS_UNAVAILABLE`) when no keys are held. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const keySet = await this.current();
    try {
      return await keySet(header, token);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !this.mayFetchForUnknownKey()) {
        throw error;
      }
      await this.refresh('unknown_key');
      const refreshed = this.keySet ?? keySet;
      return refreshed(header, token);
    }
  };

  /** Fetches the keys now unless a fetch is under way or the cooldown forbids it. Never throws. */
  async prefetch(): Promise<void> {
    if (this.keySet === undefined && this.mayFetch()) await this.refresh('initial');
  }

  /** Whether keys are held (fetched at least once and not lost). */
  get ready(): boolean {
    return this.keySet !== undefined;
  }

  private async current(): Promise<LocalKeySet> {
    const { issuer, now } = this.options;
    if (this.keySet === undefined) {
      if (this.mayFetch()) await this.refresh('initial');
    } else if (now() - this.fetchedAt >= issuer.jwksCacheTtlSeconds * 1000 && this.mayFetch()) {
      await this.refresh('expired'); // on failure the stale keys stay in use: the issuer may be briefly down
    }
    if (this.keySet === undefined) {
      throw new KeySetError(
        'ERR_JWKS_UNAVAILABLE',
        issuer.issuer,
        `no keys are available for issuer ${issuer.issuer}`,
      );
    }
    return this.keySet;
  }

  private mayFetch(): boolean {
    if (this.inflight !== undefined) return true; // joining a fetch under way costs nothing
    const cooldown =
      this.keySet === undefined
        ? Math.min(EMPTY_RETRY_MS, this.options.issuer.jwksRefreshCooldownSeconds * 1000)
        : this.options.issuer.jwksRefreshCooldownSeconds * 1000;
    return this.options.now() - this.lastAttemptAt >= cooldown;
  }

  private mayFetchForUnknownKey(): boolean {
    if (this.inflight !== undefined) return true;
    const now = this.options.now();
    return (
      now - this.lastUnknownKeyFetchAt >= this.options.issuer.jwksRefreshCooldownSeconds * 1000 &&
      now - this.lastAttemptAt >= MIN_FETCH_GAP_MS
    );
  }

  private refresh(trigger: KeySetFetchEvent['trigger']): Promise<void> {
    this.inflight ??= this.fetchOnce(trigger).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchOnce(trigger: KeySetFetchEvent['trigger']): Promise<void> {
    const { issuer, fetchKeySet, now, onFetch } = this.options;
    this.lastAttemptAt = now();
    if (trigger === 'unknown_key') this.lastUnknownKeyFetchAt = this.lastAttemptAt;
    try {
      const { keys } = await readKeySet(issuer.keys, fetchKeySet);
      const json = JSON.stringify(keys);
      this.keySet = createLocalJWKSet({ keys: keys as never });
      if (json !== this.keySetJson) {
        this.keySetJson = json;
        this.generationCount += 1;
      }
      this.fetchedAt = now();
      onFetch?.({ issuer: issuer.issuer, outcome: 'ok', trigger, keys: keys.length });
    } catch (error) {
      onFetch?.({ issuer: issuer.issuer, outcome: 'error', trigger, error: (error as Error).message });
    }
  }
}
