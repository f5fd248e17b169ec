import type { StepTracing } from '../tracing/check-tracing.js';
import type { CompiledPolicy, IssuerPolicy } from '../policy/compiled-policy.js';
import {
  IssuerKeys,
  type BoundedWait,
  type KeyRejectionEvent,
  type KeySetFetchEvent,
  type KeySetUsabilityEvent,
} from './issuer-keys.js';
import type { FetchKeySet } from './read-key-set.js';
import { VerifiedTokenCache, VerifiedTokenCaches, type TokenCacheEvent } from './verified-token-cache.js';

/** The keys of every issuer a policy trusts, and the tokens verified with them. */
export interface KeyRing {
  /** Keys for an issuer the policy trusts, by exact `iss`. */
  keysFor(issuer: string): IssuerKeys | undefined;
  /** The verified-token caches of the issuers that have one (`token_cache`), for `VerifyContext`. */
  readonly tokenCaches: VerifiedTokenCaches;
  /** Fetches the keys of every issuer that has no usable ones; resolves when all attempts have ended. Never throws. */
  prefetch(): Promise<void>;
  /** Starts every background refresh that is due (see `IssuerKeys.refreshIfDue`); never waits. */
  refreshIfDue(): void;
  /** Whether every issuer's keys are usable (obtained, and not past `jwks_max_stale`). */
  readonly ready: boolean;
  /** Each issuer and whether its keys are usable, for the gauge. */
  usability(): { issuer: string; usable: boolean }[];
}

export interface KeyRingDependencies {
  readonly fetchKeySet: FetchKeySet;
  readonly now: () => number;
  readonly onFetch?: (event: KeySetFetchEvent) => void;
  readonly onUsability?: (event: KeySetUsabilityEvent) => void;
  readonly onKeyRejected?: (event: KeyRejectionEvent) => void;
  /** How a request waits for a fetch (default: a timer); for tests. */
  readonly waitAtMost?: BoundedWait;
  /** Jitter source, [0, 1); for tests. */
  readonly random?: () => number;
  /** Told of every verified-token cache hit, miss and eviction, by issuer (for metrics); must not throw. */
  readonly onTokenCacheEvent?: (issuer: string, event: TokenCacheEvent) => void;
  /** Child spans of the Check under way, for fetches a request waits for (tracing on). */
  readonly steps?: StepTracing;
}

/**
 * Builds the key ring for a policy's issuers. Nothing is fetched until `prefetch` or first use. With
 * `previous` (a policy reload), an issuer whose key source and cache settings are unchanged keeps its
 * cached keys, so a reload causes no refetch storm and no 503 window; and an issuer whose settings are
 * all unchanged (audiences, algorithms, claims, `typ`, tolerance, keys, `token_cache`...) keeps its
 * verified tokens too. Any other change starts that issuer's token cache afresh.
 */
export function createKeyRing(
  policy: CompiledPolicy,
  deps: KeyRingDependencies,
  previous?: KeyRing,
): KeyRing {
  const { onTokenCacheEvent, ...keyDeps } = deps;
  const byIssuer = new Map<string, IssuerKeys>();
  const caches = new Map<string, VerifiedTokenCache>();
  for (const issuer of policy.issuers.values()) {
    const keptKeys = previous?.keysFor(issuer.issuer);
    const keys =
      keptKeys !== undefined && sameKeySettings(keptKeys.issuer, issuer)
        ? keptKeys
        : new IssuerKeys({ issuer, ...keyDeps });
    byIssuer.set(issuer.issuer, keys);
    if (issuer.tokenCache === undefined) continue;
    const keptCache = previous?.tokenCaches.forIssuer(issuer.issuer);
    caches.set(
      issuer.issuer,
      keptCache !== undefined && keptCache.keys === keys && sameSettings(keptCache.issuer, issuer)
        ? keptCache
        : new VerifiedTokenCache({
            issuer,
            settings: issuer.tokenCache,
            keys,
            now: deps.now,
            ...(onTokenCacheEvent === undefined ? {} : { onEvent: onTokenCacheEvent }),
          }),
    );
  }
  return {
    keysFor: (issuer) => byIssuer.get(issuer),
    tokenCaches: new VerifiedTokenCaches(caches),
    prefetch: async () => {
      await Promise.all([...byIssuer.values()].map((keys) => keys.prefetch()));
    },
    refreshIfDue: () => {
      for (const keys of byIssuer.values()) keys.refreshIfDue();
    },
    get ready() {
      return [...byIssuer.values()].every((keys) => keys.usable);
    },
    usability: () =>
      [...byIssuer.values()].map((keys) => ({ issuer: keys.issuer.issuer, usable: keys.usable })),
  };
}

/** Whether two configurations of one issuer fetch and cache keys identically. */
function sameKeySettings(a: IssuerPolicy, b: IssuerPolicy): boolean {
  const source = (issuer: IssuerPolicy) => {
    const keys = issuer.keys;
    if (keys.kind === 'uri') return `uri ${keys.uri.href}`;
    if (keys.kind === 'file') return `file ${keys.path}`;
    return `discovery ${keys.metadataUrl.href} ${keys.issuer}`;
  };
  return (
    source(a) === source(b) &&
    a.jwksCacheTtlSeconds === b.jwksCacheTtlSeconds &&
    a.jwksRefreshCooldownSeconds === b.jwksRefreshCooldownSeconds &&
    a.jwksMaxStaleSeconds === b.jwksMaxStaleSeconds &&
    a.jwksFetchWaitMs === b.jwksFetchWaitMs &&
    sameSettings(a.algorithms, b.algorithms) // which keys of a set are usable depends on them
  );
}

/**
 * Whether two compiled settings are the same, field by field, whatever fields they have: so that a setting
 * added to `IssuerPolicy` later is compared without anyone remembering to. Values of a kind it does not know
 * (a Set, a function) compare as different, which only costs a cache refill.
 */
function sameSettings(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof URL || b instanceof URL) {
    return a instanceof URL && b instanceof URL && a.href === b.href;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((item, i) => sameSettings(item, b[i]))
    );
  }
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) {
    return false;
  }
  const keysOfA = Object.keys(a);
  const keysOfB = Object.keys(b);
  return (
    keysOfA.length === keysOfB.length &&
    keysOfA.every(
      (key) =>
        Object.hasOwn(b, key) &&
        sameSettings((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
    )
  );
}
