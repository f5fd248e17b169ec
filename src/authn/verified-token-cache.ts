import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { IssuerPolicy, TokenCachePolicy } from '../policy/compiled-policy.js';
import type { TokenVerification } from '../authz/token-verification.js';
import type { IssuerKeys } from './issuer-keys.js';

/** What happened in a verified-token cache, for metrics: a lookup answered or not, an entry dropped for room. */
export type TokenCacheEvent = 'hit' | 'miss' | 'eviction';

/** A successful verification, the only kind ever remembered. */
export type SuccessfulVerification = Extract<TokenVerification, { kind: 'verified' }>;

/** The token's time claims, in seconds since the epoch, as verification read them. */
export interface TokenTimes {
  readonly exp?: number | undefined;
  readonly nbf?: number | undefined;
}

export interface VerifiedTokenCacheOptions {
  /** The issuer configuration the remembered verifications were made under. */
  readonly issuer: IssuerPolicy;
  readonly settings: TokenCachePolicy;
  /** The issuer's keys: entries last only as long as the key set they were verified with. */
  readonly keys: IssuerKeys;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now: () => number;
  /** Told of every hit, counted miss and eviction; must not throw. */
  readonly onEvent?: (issuer: string, event: TokenCacheEvent) => void;
}

/**
 * The key a token is remembered under: its SHA-256 digest (base64url). The token itself is never a key,
 * so a heap snapshot of the cache holds no usable credential.
 */
export function tokenDigest(token: string): string {
  return hash('sha256', token, 'base64url');
}

/**
 * Distinct scope and `amr` sets shared between the entries of one cache, at most. Most tokens of an API
 * carry one of a few scope sets, and a Set costs more memory than the rest of an entry.
 */
const MAX_SHARED_SETS = 1024;

/** One remembered verification. */
interface Entry {
  readonly verification: SuccessfulVerification;
  /** `exp`, seconds since the epoch. */
  readonly exp: number;
  /** `nbf`, seconds since the epoch, if the token has one. */
  readonly nbf: number | undefined;
  /** The issuer's key-set generation it was verified under. */
  readonly generation: number;
  /** When the configured TTL ends, in milliseconds since the epoch. */
  readonly staleAtMs: number;
}

/**
 * One issuer's verified tokens, by digest, so that a token presented again skips signature and claim
 * verification. Bounded in entries (least recently used dropped first). An entry is used only while
 * - the TTL since it was verified has not passed,
 * - the token's `exp` and `nbf` still hold, with the issuer's `clock_tolerance` (checked on every use, as
 *   jose checks them),
 * - the issuer's keys are the set it was verified with (`IssuerKeys.generation`): a changed set, or keys
 *   dropped for being older than `jwks_max_stale`, empty the cache, so a key removed from the set keeps
 *   none of its tokens alive past the background refresh that notices it (about `jwks_cache_ttl`).
 *
 * What a route requires (scopes, `max_age` against `auth_time`) is not cached: it is decided per request.
 * Only successful verifications are remembered. A policy reload that changes anything about the issuer
 * starts a new cache (`createKeyRing`).
 */
export class VerifiedTokenCache {
  readonly issuer: IssuerPolicy;
  readonly keys: IssuerKeys;
  private readonly entries: LRUCache<string, Entry>;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onEvent: ((issuer: string, event: TokenCacheEvent) => void) | undefined;
  /** The key-set generation the entries belong to. */
  private generation: number;
  /** Equal sets of claim values, shared between entries (see MAX_SHARED_SETS), by their JSON. */
  private readonly sharedSets = new Map<string, ReadonlySet<string>>();

  /** @throws RangeError when `settings.maxEntries` is not a positive integer. */
  constructor(options: VerifiedTokenCacheOptions) {
    const { issuer, settings, keys, now, onEvent } = options;
    if (!Number.isSafeInteger(settings.maxEntries) || settings.maxEntries < 1) {
      throw new RangeError(`token_cache.max_entries must be a positive integer, not ${settings.maxEntries}`);
    }
    this.issuer = issuer;
    this.keys = keys;
    this.ttlMs = settings.ttlSeconds * 1000;
    this.now = now;
    this.onEvent = onEvent;
    this.generation = keys.generation;
    this.entries = new LRUCache<string, Entry>({
      max: settings.maxEntries,
      ...(onEvent === undefined
        ? {}
        : {
            dispose: (_entry, _digest, reason) => {
              if (reason === 'evict') onEvent(issuer.issuer, 'eviction');
            },
          }),
    });
  }

  /** How many tokens are remembered (some may be past use, until looked up or pushed out). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The remembered verification of the token with this digest, if it may be used now (counted as a hit);
   * otherwise undefined, and an entry past its TTL, `exp` or `nbf` is dropped. A miss is not counted
   * here: the issuer of a token that is not found is unknown until it is decoded (see `noteMiss`).
   */
  find(digest: string): SuccessfulVerification | undefined {
    this.followKeySet();
    if (this.entries.size === 0) return undefined;
    const entry = this.entries.get(digest);
    if (entry === undefined || entry.generation !== this.generation) return undefined;
    // A hit uses the keys as much as a verification would: a refresh that is due starts now, in the
    // background, so that a key removed from the set is noticed (and the cache emptied) whatever the traffic.
    this.keys.refreshIfDue();
    const nowMs = this.now();
    // jose's rules (jwtVerify): expired when exp <= now - tolerance, not yet valid when nbf > now + tolerance,
    // with now in whole seconds.
    const seconds = Math.floor(nowMs / 1000);
    const tolerance = this.issuer.clockToleranceSeconds;
    if (
      nowMs >= entry.staleAtMs ||
      entry.exp <= seconds - tolerance ||
      (entry.nbf !== undefined && entry.nbf > seconds + tolerance)
    ) {
      this.entries.delete(digest);
      return undefined;
    }
    this.onEvent?.(this.issuer.issuer, 'hit');
    return entry.verification;
  }

  /** Counts a token of this issuer that was not found and is being verified in full. */
  noteMiss(): void {
    this.onEvent?.(this.issuer.issuer, 'miss');
  }

  /**
   * Remembers a successful verification that began when the issuer's key set was at `generation`. Nothing
   * is remembered when the set has changed since (the key that verified it may be gone), nor for a token
   * without a numeric `exp`.
   */
  remember(
    digest: string,
    verification: SuccessfulVerification,
    times: TokenTimes,
    generation: number,
  ): void {
    this.followKeySet();
    if (generation !== this.generation || typeof times.exp !== 'number') return;
    const { token } = verification;
    this.entries.set(digest, {
      verification: {
        kind: 'verified',
        token: {
          ...token,
          scopes: this.shared(token.scopes),
          amr: this.shared(token.amr),
          audiences: this.shared(token.audiences),
        },
      },
      exp: times.exp,
      nbf: typeof times.nbf === 'number' ? times.nbf : undefined,
      generation,
      staleAtMs: this.now() + this.ttlMs,
    });
  }

  /** An equal set already held by another entry, or `set` itself (then shared from now on, room allowing). */
  private shared(set: ReadonlySet<string>): ReadonlySet<string> {
    const key = JSON.stringify([...set]); // unambiguous, whatever the values contain
    const known = this.sharedSets.get(key);
    if (known !== undefined) return known;
    if (this.sharedSets.size < MAX_SHARED_SETS) this.sharedSets.set(key, set);
    return set;
  }

  /** Empties the cache when the issuer's key set has changed since the entries were verified. */
  private followKeySet(): void {
    const current = this.keys.generation;
    if (current === this.generation) return;
    this.entries.clear();
    this.generation = current;
  }
}

/** The verified-token caches of one policy's issuers (those that have one), for `verifyAccessToken`. */
export class VerifiedTokenCaches {
  private readonly all: readonly VerifiedTokenCache[];

  constructor(private readonly byIssuer: ReadonlyMap<string, VerifiedTokenCache>) {
    this.all = [...byIssuer.values()];
  }

  /** Whether any issuer caches verified tokens (if none, no digest need be computed). */
  get enabled(): boolean {
    return this.all.length > 0;
  }

  /** The cache of an issuer, by exact `iss`; undefined when it has none. */
  forIssuer(issuer: string): VerifiedTokenCache | undefined {
    return this.byIssuer.get(issuer);
  }

  /**
   * The remembered verification for this digest in any issuer's cache. Looked up before the token is
   * decoded, so the issuer is not known yet; a digest of the whole token can only be found under the issuer
   * that verified it.
   */
  find(digest: string): SuccessfulVerification | undefined {
    for (const cache of this.all) {
      const found = cache.find(digest);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Entries held per issuer, for the entries gauge. */
  sizes(): { issuer: string; entries: number }[] {
    return this.all.map((cache) => ({ issuer: cache.issuer.issuer, entries: cache.size }));
  }
}
