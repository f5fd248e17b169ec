import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import type { IssuerPolicy } from '../policy/compiled-policy.js';
import { KeySetError, KeySetReadError } from './key-set-errors.js';
import { classifyKeySetFault, type KeySetFetchCause } from './key-set-fetch-cause.js';
import { checkKeySet, type CheckedKeySet, type RejectedKey } from './key-set-check.js';
import { readKeySet, type FetchKeySet } from './read-key-set.js';
import type { StepTracing } from '../tracing/check-tracing.js';

/** What happened to one attempt at obtaining a key set: for logs and metrics. */
export interface KeySetFetchEvent {
  readonly issuer: string;
  readonly outcome: 'ok' | 'error';
  /**
   * Why it was fetched: `initial` (no usable keys held), `refresh` (in the background, around
   * `jwks_cache_ttl`, while the keys held stay in use) or `unknown_key` (a token named a `kid` the set
   * does not have).
   */
  readonly trigger: 'initial' | 'refresh' | 'unknown_key';
  /** Keys in use after it (those that could be imported). */
  readonly keys?: number;
  readonly error?: string;
  /** Why it failed, classified (key-set-fetch-cause.ts); with `status` for an HTTP status. */
  readonly cause?: KeySetFetchCause;
  readonly status?: number;
}

/** A change in whether an issuer's keys may be used: for a log line (the gauge reads `usable` itself). */
export interface KeySetUsabilityEvent {
  readonly issuer: string;
  /**
   * `unusable`: no keys are held, so the issuer's tokens are answered 503 (the first fetch failed, or every
   * refresh failed for `jwks_max_stale` and the keys held were dropped); `usable`: keys were obtained again
   * after that. Keys obtained by the first fetch are no change (the fetch is logged).
   */
  readonly state: 'usable' | 'unusable';
  /** For `unusable`: `fetch_failed` (none were ever obtained) or `stale` (the keys held were dropped). */
  readonly reason?: 'fetch_failed' | 'stale';
  /** For `unusable`: the last failed fetch's cause, and HTTP status for `status` (none if no fetch failed). */
  readonly cause?: KeySetFetchCause;
  readonly status?: number;
  /** When keys were last fetched successfully, in milliseconds since the epoch (0: never). */
  readonly fetchedAtMs: number;
}

/** What a fetch left out of a key set, reported once per distinct set. */
export interface KeyRejectionEvent extends RejectedKey {
  readonly issuer: string;
}

/** Waits for `promise` at most `ms` milliseconds; resolves either way, never rejects. */
export type BoundedWait = (promise: Promise<unknown>, ms: number) => Promise<void>;

export interface IssuerKeysOptions {
  readonly issuer: IssuerPolicy;
  readonly fetchKeySet: FetchKeySet;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now: () => number;
  /** A number in [0, 1) for the refresh jitter; injectable for tests. */
  readonly random?: () => number;
  /** How a request waits for a fetch under way (default: a timer); injectable so tests never sleep. */
  readonly waitAtMost?: BoundedWait;
  readonly onFetch?: (event: KeySetFetchEvent) => void;
  readonly onUsability?: (event: KeySetUsabilityEvent) => void;
  readonly onKeyRejected?: (event: KeyRejectionEvent) => void;
  /**
   * Child spans of the Check under way (tracing on): a fetch a request waits for (`initial`, `unknown_key`)
   * is a span of that request's trace; background refreshes are not traced.
   */
  readonly steps?: StepTracing;
}

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

/** While no keys are held, a failed fetch is retried after at most this long (ms), whatever the cooldown. */
const EMPTY_RETRY_MS = 5000; // 5 seconds
/** The least time between the end of one fetch and the start of the next, whatever triggered them. */
const MIN_FETCH_GAP_MS = 1000; // 1 second
/**
 * The background refresh starts at a random point in this share of `jwks_cache_ttl` after a fetch, so that
 * it is done before the TTL is up and replicas started together do not all fetch at once.
 */
const REFRESH_AT_SHARE = { from: 0.75, to: 0.9 } as const;
/** After a failed refresh, the next one waits the cooldown plus up to this share of it (jitter). */
const RETRY_JITTER_SHARE = 0.2;

/** The default {@link BoundedWait}: a timer, cleared as soon as the promise settles. */
export const waitWithTimer: BoundedWait = async (promise, ms) => {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
};

/**
 * One issuer's verification keys, kept off the request path (stale-while-revalidate):
 * - fetched at start-up (`prefetch`) or by the first request, which waits for it at most `jwks_fetch_wait`
 *   (below Envoy's ext_authz timeout; the fetch itself may finish later and fill the cache);
 * - refreshed in the background before `jwks_cache_ttl` is up (at a random 75–90 % of it), and after a
 *   failed refresh again once `jwks_refresh_cooldown` (plus jitter) has passed since it ended; meanwhile the
 *   keys held stay in use, up to `jwks_max_stale` after the last successful fetch, when they are dropped
 *   (the issuer's tokens then get 503 until a fetch succeeds);
 * - fetched again for a token whose `kid` is unknown (key rotation), at most once per
 *   `jwks_refresh_cooldown`, the request waiting at most `jwks_fetch_wait`.
 * Cooldowns count from the end of a fetch, and no fetch starts within a second of the end of the last one;
 * concurrent requests share one fetch. Each key is imported when its set arrives (`checkKeySet`): one that
 * cannot be used is left out and reported, so a token naming it is refused as signed with an unknown key.
 * Keys are found only by the token's `kid` and `alg` in this set; `jku`, `x5u` and embedded `jwk` header
 * parameters are never followed.
 */
export class IssuerKeys {
  private keySet: LocalKeySet | undefined;
  /** End of the last successful fetch (0: none). */
  private fetchedAt = 0;
  /** End of the last fetch, successful or not. */
  private lastFetchEndedAt = Number.NEGATIVE_INFINITY;
  private lastUnknownKeyFetchEndedAt = Number.NEGATIVE_INFINITY;
  /** When the next background refresh is due (only while keys are held). */
  private refreshAt = Number.POSITIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private generationCount = 0;
  /** The usable keys last obtained, serialised: to tell a changed set from the same one fetched again. */
  private keySetJson: string | undefined;
  /** The key set as last fetched, serialised: rejections are reported once per distinct set. */
  private fetchedJson: string | undefined;
  /** The state last reported to `onUsability`; `pending` until the first fetch ends. */
  private reportedState: 'pending' | 'usable' | 'unusable' = 'pending';
  /** The last failed fetch's cause, for the `unusable` event of keys dropped as stale. */
  private lastFault: { cause: KeySetFetchCause; status?: number } | undefined;
  private readonly random: () => number;
  private readonly waitAtMost: BoundedWait;

  constructor(private readonly options: IssuerKeysOptions) {
    this.random = options.random ?? Math.random;
    this.waitAtMost = options.waitAtMost ?? waitWithTimer;
  }

  /**
   * Which key set is held: 0 before any, then one more each time the usable keys change (a fetch brings a
   * different set, or the keys are dropped as stale). Fetching the same set again leaves it as it is. A
   * token verified under an older generation may have been verified with a key that is gone.
   */
  get generation(): number {
    this.dropIfStale();
    return this.generationCount;
  }

  /** Whether usable keys are held: fetched, and not dropped for being older than `jwks_max_stale`. */
  get usable(): boolean {
    this.dropIfStale();
    return this.keySet !== undefined;
  }

  /** The issuer configuration these keys belong to. */
  get issuer(): IssuerPolicy {
    return this.options.issuer;
  }

  /**
   * A jose key resolver for `jwtVerify`. Throws `KeySetError` (`ERR_JWKS_UNAVAILABLE`) when no usable keys
   * are held and none arrive within `jwks_fetch_wait`; jose's `ERR_JWKS_NO_MATCHING_KEY` for a `kid` that
   * is not in the set (after a bounded wait for a refetch, when one may be made).
   */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const keySet = await this.current();
    try {
      return await keySet(header, token);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !this.mayFetchForUnknownKey()) {
        throw error;
      }
      await this.waitAtMost(this.refresh('unknown_key'), this.options.issuer.jwksFetchWaitMs);
      const refreshed = this.keySet ?? keySet;
      return refreshed(header, token);
    }
  };

  /**
   * Starts a background refresh if one is due (never waits for it). Called on every use of the keys,
   * including a verified-token cache hit, and periodically by the server, so keys stay fresh whatever
   * the traffic.
   */
  refreshIfDue(): void {
    this.dropIfStale();
    if (this.inflight !== undefined) return;
    const now = this.options.now();
    if (this.keySet === undefined) {
      if (this.mayFetchWithoutKeys(now)) void this.refresh('initial');
    } else if (now >= this.refreshAt && now - this.lastFetchEndedAt >= MIN_FETCH_GAP_MS) {
      void this.refresh('refresh');
    }
  }

  /** Fetches the keys now unless usable ones are held, a fetch is under way, or a retry is not due yet. */
  async prefetch(): Promise<void> {
    if (this.usable) return;
    if (this.inflight === undefined && !this.mayFetchWithoutKeys(this.options.now())) return;
    await this.refresh('initial');
  }

  private async current(): Promise<LocalKeySet> {
    this.refreshIfDue();
    if (this.keySet === undefined && this.inflight !== undefined) {
      await this.waitAtMost(this.inflight, this.options.issuer.jwksFetchWaitMs);
    }
    if (this.keySet === undefined) {
      const { issuer } = this.options.issuer;
      throw new KeySetError('ERR_JWKS_UNAVAILABLE', issuer, `no keys are available for issuer ${issuer}`);
    }
    return this.keySet;
  }

  /** Past `jwks_max_stale` since the last successful fetch, the keys held are no longer trusted. */
  private dropIfStale(): void {
    if (this.keySet === undefined) return;
    const { now, issuer, onUsability } = this.options;
    if (now() - this.fetchedAt <= issuer.jwksMaxStaleSeconds * 1000) return;
    this.keySet = undefined;
    this.keySetJson = undefined;
    this.generationCount += 1; // nothing verified with the dropped keys may be remembered
    this.refreshAt = Number.POSITIVE_INFINITY;
    if (this.reportedState !== 'unusable') {
      this.reportedState = 'unusable';
      onUsability?.({
        issuer: issuer.issuer,
        state: 'unusable',
        reason: 'stale',
        ...this.lastFault,
        fetchedAtMs: this.fetchedAt,
      });
    }
  }

  private mayFetchWithoutKeys(now: number): boolean {
    const cooldown = Math.min(EMPTY_RETRY_MS, this.options.issuer.jwksRefreshCooldownSeconds * 1000);
    return now - this.lastFetchEndedAt >= cooldown;
  }

  private mayFetchForUnknownKey(): boolean {
    if (this.inflight !== undefined) return true; // joining a fetch under way costs nothing
    const now = this.options.now();
    return (
      now - this.lastUnknownKeyFetchEndedAt >= this.options.issuer.jwksRefreshCooldownSeconds * 1000 &&
      now - this.lastFetchEndedAt >= MIN_FETCH_GAP_MS
    );
  }

  private refresh(trigger: KeySetFetchEvent['trigger']): Promise<void> {
    this.inflight ??= this.tracedFetch(trigger).then(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** {@link fetchOnce}, as a span of the Check that waits for it (tracing on; not background refreshes). */
  private tracedFetch(trigger: KeySetFetchEvent['trigger']): Promise<KeySetFetchEvent['outcome']> {
    const { steps, issuer } = this.options;
    if (steps === undefined || trigger === 'refresh') return this.fetchOnce(trigger);
    return steps.step(
      'authz.fetch_key_set',
      { 'authz.issuer': issuer.issuer, 'authz.key_set.trigger': trigger },
      () => this.fetchOnce(trigger),
      (outcome) => ({ 'authz.key_set.outcome': outcome }),
    );
  }

  /**
   * One fetch; never rejects (the callbacks are told after the state is settled, outside the fetch).
   * @returns `ok`, or `error` when no usable set was obtained.
   */
  private async fetchOnce(trigger: KeySetFetchEvent['trigger']): Promise<KeySetFetchEvent['outcome']> {
    const { issuer, fetchKeySet, now, onFetch } = this.options;
    let checked: CheckedKeySet;
    let rejectionsToReport: readonly RejectedKey[] = [];
    try {
      const { keys } = await readKeySet(issuer.keys, fetchKeySet);
      checked = await checkKeySet(keys, issuer.algorithms, issuer.maxRsaKeyBits);
      rejectionsToReport = this.newRejections(JSON.stringify(keys), checked.rejected);
      // A set with nothing usable in it is a broken answer, not a rotation: the keys held stay in use.
      if (checked.usable.length === 0)
        throw new KeySetReadError('ERR_JWKS_BODY', 'the key set has no usable key');
    } catch (error) {
      const ended = now();
      this.endFetch(trigger, ended);
      // A retry after the cooldown; never earlier than a refresh already scheduled (a failed unknown-kid
      // refetch does not bring the regular refresh forward).
      const retryAt =
        ended + issuer.jwksRefreshCooldownSeconds * 1000 * (1 + RETRY_JITTER_SHARE * this.random());
      this.refreshAt = this.keySet === undefined ? retryAt : Math.max(this.refreshAt, retryAt);
      this.reportRejections(rejectionsToReport);
      const fault = classifyKeySetFault(error);
      this.lastFault = fault;
      onFetch?.({ issuer: issuer.issuer, outcome: 'error', trigger, error: faultMessage(error), ...fault });
      if (this.keySet === undefined && this.reportedState !== 'unusable') {
        this.reportedState = 'unusable';
        this.options.onUsability?.({
          issuer: issuer.issuer,
          state: 'unusable',
          reason: 'fetch_failed',
          ...fault,
          fetchedAtMs: this.fetchedAt,
        });
      }
      return 'error';
    }
    const json = JSON.stringify(checked.usable);
    this.keySet = createLocalJWKSet({ keys: checked.usable as never });
    if (json !== this.keySetJson) {
      this.keySetJson = json;
      this.generationCount += 1;
    }
    const ended = now();
    this.fetchedAt = ended;
    this.endFetch(trigger, ended);
    const { from, to } = REFRESH_AT_SHARE;
    this.refreshAt = ended + issuer.jwksCacheTtlSeconds * 1000 * (from + (to - from) * this.random());
    const recovered = this.reportedState === 'unusable';
    this.reportedState = 'usable';
    this.lastFault = undefined;
    this.reportRejections(rejectionsToReport);
    if (recovered) this.options.onUsability?.({ issuer: issuer.issuer, state: 'usable', fetchedAtMs: ended });
    onFetch?.({ issuer: issuer.issuer, outcome: 'ok', trigger, keys: checked.usable.length });
    return 'ok';
  }

  private endFetch(trigger: KeySetFetchEvent['trigger'], ended: number): void {
    this.lastFetchEndedAt = ended;
    if (trigger === 'unknown_key') this.lastUnknownKeyFetchEndedAt = ended;
  }

  /** The rejections of a fetched set not reported before (none when the same set comes again). */
  private newRejections(fetchedJson: string, rejected: readonly RejectedKey[]): readonly RejectedKey[] {
    if (fetchedJson === this.fetchedJson) return [];
    this.fetchedJson = fetchedJson;
    return rejected;
  }

  private reportRejections(rejected: readonly RejectedKey[]): void {
    for (const key of rejected) this.options.onKeyRejected?.({ issuer: this.options.issuer.issuer, ...key });
  }
}

/**
 * A failed fetch's message for the log: fetch says only "fetch failed", so the code of the error under it
 * (ECONNREFUSED, ENOTFOUND, a certificate code) is added. Neither carries a token or a URL's credentials
 * (key set URLs may not have any: fetchable-url.ts).
 */
function faultMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const inner = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof inner === 'string' && !message.includes(inner) ? `${message} (${inner})` : message;
}
