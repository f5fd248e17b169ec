import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis, RedisOptions } from 'ioredis';
import type { ReplayClaim } from '../authz/possession-proof.js';
import type { ReplayStoreSettings } from '../policy/compiled-policy.js';
import { redisAddress, redisUrlProblem } from '../policy/redis-url.js';
import type { ReplayEntry, ReplayLimits, ReplayStore } from './dpop-replay-store.js';

/** `dpop.replay_store` with `type: redis`. */
export type RedisReplayStoreSettings = Extract<ReplayStoreSettings, { type: 'redis' }>;

/**
 * Why a claim could not be answered by Redis: not connected (or connecting), no reply within `timeout`,
 * too many commands already waiting, an error reply or a dropped connection, or a store that could not be
 * set up from its settings (an unreadable `url_file` or `ca_file`, a URL refused).
 */
export type ReplayStoreFault = 'disconnected' | 'timeout' | 'busy' | 'error' | 'settings';

/** A change of the shared store's state, said once per change (never per request). */
export interface ReplayStoreStateEvent {
  readonly state: 'available' | 'unavailable';
  /** Why it is unavailable. */
  readonly cause?: ReplayStoreFault;
  /** What went wrong, without the URL's credentials: a Redis error's message, or a settings problem. */
  readonly detail?: string;
  /** Scheme, host and port of the Redis asked (never credentials). */
  readonly address: string;
  /** Whether proofs are checked against the local store meanwhile (`fallback: local`), or refused. */
  readonly fallback: 'none' | 'local';
}

export interface RedisReplayStoreHooks {
  onState(event: ReplayStoreStateEvent): void;
  /** Every claim Redis could not answer (a metric; refused or answered locally as `fallback` says). */
  onFault(cause: ReplayStoreFault): void;
  /**
   * This claim found Redis without a replay history (new, restarted without its data, flushed) and began
   * one at `sinceMs` (Redis's clock): proofs issued before then are refused until their windows close.
   */
  onHistoryBegan(sinceMs: number): void;
  /**
   * Redis evicts keys under memory pressure (`maxmemory-policy` other than `noeviction`): an entry evicted
   * early is a replay accepted. Said once per connection when Redis lets the policy be read.
   */
  onEvictionPolicy(policy: string): void;
}

/**
 * Commands sent and not yet answered, at most: past it, a claim is refused at once (`busy`) rather than
 * queued behind a Redis that is not keeping up. About what 5,000 checks a second fill at a 200 ms timeout.
 */
export const MAX_COMMANDS_IN_FLIGHT = 1000;

/** The longest an entry is held, as the memory store's MAX_HOLD_SECONDS: beyond any proof window. */
const MAX_HOLD_MS = 3_600_000; // 1 hour
/** The shortest: an entry whose window has just closed still covers the second it closed in. */
const MIN_HOLD_MS = 1000; // 1 second

/** Reconnection delays: doubling from 50 ms to at most 2 s, plus jitter so replicas do not reconnect in step. */
const RECONNECT_BASE_MS = 50;
const RECONNECT_MAX_MS = 2000;
/** How long a TCP (and TLS) connection may take to open. */
const CONNECT_TIMEOUT_MS = 2000;
/** How long `close` waits for QUIT's reply before dropping the connection. */
const QUIT_WAIT_MS = 1000;
/** The least time between an `unavailable` line and the `available` line after it. */
const STATE_LINE_DWELL_MS = 5000;
/** The most read from `url_file` / `ca_file`: a URL or a few certificates, never more. */
const MAX_SETTINGS_FILE_BYTES = 256 * 1024;

/**
 * How much older than the start of Redis's replay history a proof's `iat` may be: `iat` is in whole seconds
 * and a client's clock may lag a little. A proof issued earlier may have been accepted by the history lost.
 */
const HISTORY_ALLOWANCE_MS = 2000;

/**
 * One atomic step in Redis (a script runs alone). First, the history: the key `since` says when this Redis
 * began holding entries; without it (a new Redis, or one restarted without its data, flushed or failed over
 * empty) the history begins now, and a proof issued before that may have been accepted by the history lost,
 * so it is refused until its window closes (a client's next proof passes). Then: a `jti` already held is a
 * replay; else each share (the proof key's, the subject's) drops its expired entries and, if full, answers
 * when its oldest entry expires; else the entry is set (`SET NX` with its expiry) and counted in its shares.
 * The shares are sorted sets scored by expiry; each key expires by itself, so nothing needs sweeping.
 * Redis's own clock scores them, so replicas' clocks need not agree.
 *
 * KEYS: the entry, the key's share, the subject's share, the history's start. ARGV: hold ms, per-key limit,
 * per-subject limit, 1 when there is a subject, the entry's member name in the shares, the proof's `iat` ms,
 * the history allowance ms.
 * Returns {code, ms, since, began}: code 1 fresh, 2 replayed, 3 key over its share (ms: until its oldest
 * entry expires), 4 subject over its share, 5 issued before the history began; since: the history's start
 * (ms); began: 1 when this call began it.
 */
const CLAIM_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local since = tonumber(redis.call('GET', KEYS[4]) or '')
local began = 0
if not since then
  since = now
  redis.call('SET', KEYS[4], since)
  began = 1
end
if tonumber(ARGV[6]) + tonumber(ARGV[7]) < since then return {5, 0, since, began} end
local hold = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return {2, 0, since, began} end
local function wait_for(share, limit)
  redis.call('ZREMRANGEBYSCORE', share, '-inf', now)
  if redis.call('ZCARD', share) < limit then return nil end
  local oldest = redis.call('ZRANGE', share, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) - now
end
local wait = wait_for(KEYS[2], tonumber(ARGV[2]))
if wait then return {3, wait, since, began} end
if ARGV[4] == '1' then
  wait = wait_for(KEYS[3], tonumber(ARGV[3]))
  if wait then return {4, wait, since, began} end
end
redis.call('SET', KEYS[1], '1', 'PX', hold, 'NX')
local function count_in(share)
  redis.call('ZADD', share, now + hold, ARGV[5])
  if redis.call('PTTL', share) < hold then redis.call('PEXPIRE', share, hold) end
end
count_in(KEYS[2])
if ARGV[4] == '1' then count_in(KEYS[3]) end
return {1, 0, since, began}
`;

interface ClaimCommand {
  claimDpopProof(
    entryKey: string,
    keyShare: string,
    subjectShare: string,
    historySince: string,
    holdMs: number,
    perKey: number,
    perSubject: number,
    hasSubject: 0 | 1,
    member: string,
    issuedAtMs: number,
    historyAllowanceMs: number,
  ): Promise<unknown>;
}

/**
 * What setting up from the settings gave: a client (once ioredis is loaded: it is imported only by a
 * process whose policy names Redis, as it costs some 25 MB and 100 ms to load), or why there is none.
 */
type Connection =
  | { readonly state: 'loading' }
  | { readonly state: 'open'; readonly client: Redis & ClaimCommand }
  | { readonly state: 'refused'; readonly problem: string }
  | { readonly state: 'closed' };

/**
 * The replay store shared by every worker and replica (RFC 9449 section 11.1 across a fleet): each claim
 * is one script call in Redis, sent with whatever else is sent in the same tick as one pipeline. A claim
 * Redis cannot answer within `timeout` (down, slow, or too many commands waiting) is `unavailable`, or,
 * with `fallback: local`, answered by this process's own store. Never waits longer than `timeout`; never
 * queues while disconnected; reconnects with backoff by itself.
 */
export class RedisReplayStore implements ReplayStore {
  private connection: Connection = { state: 'loading' };
  private readonly address: string;
  private inFlight = 0;
  private available = false;
  /** The state last said, so each change is said once; undefined until the first. */
  private said: 'available' | 'unavailable' | undefined;
  /** When `unavailable` was last said (performance.now()), so a flapping store is not said on every flap. */
  private saidUnavailableAt = -Infinity;
  /** The `available` line waiting for the dwell to end. */
  private availableLine: NodeJS.Timeout | undefined;
  private endFirstAttempt!: () => void;
  /** Resolves once the first connection attempt has ended, either way (for the start-up wait). */
  readonly firstAttempt: Promise<void>;

  constructor(
    private readonly settings: RedisReplayStoreSettings,
    private readonly local: ReplayStore,
    private readonly hooks: RedisReplayStoreHooks,
  ) {
    this.firstAttempt = new Promise((resolve) => {
      this.endFirstAttempt = resolve;
    });
    const url = readUrl(settings);
    this.address = 'url' in url ? redisAddress(url.url) : '(url_file)';
    if ('problem' in url) this.refuse(url.problem);
    else void this.open(url.url);
  }

  private async open(url: string): Promise<void> {
    let client: Redis;
    try {
      const { Redis: RedisClient } = await import('ioredis');
      if (this.connection.state !== 'loading') return; // closed meanwhile
      const options = clientOptions(url, this.settings);
      if (typeof options === 'string') return this.refuse(options);
      client = new RedisClient(url, options);
    } catch (error) {
      return this.refuse(`the Redis client cannot be set up (${(error as Error).message.slice(0, 200)})`);
    }
    this.connection = { state: 'open', client: watch(client, url, this) };
  }

  private refuse(problem: string): void {
    this.connection = { state: 'refused', problem };
    this.becomeUnavailable('settings', problem);
  }

  /** How many `jti` values this process holds itself (only what `fallback: local` claimed). */
  get size(): number {
    return this.local.size;
  }

  /** Whether Redis can be asked now (connected and ready). */
  get up(): boolean {
    return this.available;
  }

  async claim(entry: ReplayEntry, nowMs: number, limits: ReplayLimits): Promise<ReplayClaim> {
    const outcome = await this.ask(entry, nowMs, limits);
    if (typeof outcome !== 'string') return outcome;
    this.hooks.onFault(outcome);
    if (outcome !== 'busy') this.becomeUnavailable(outcome);
    return this.settings.fallback === 'local'
      ? this.local.claim(entry, nowMs, limits)
      : { kind: 'unavailable' };
  }

  /** Ends the connection: QUIT, waited for a bounded time, then dropped. */
  async close(): Promise<void> {
    clearTimeout(this.availableLine);
    const closing = this.connection;
    this.connection = { state: 'closed' };
    if (closing.state !== 'open') return;
    const { client } = closing;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, QUIT_WAIT_MS))),
    ]);
    clearTimeout(timer);
    client.disconnect(false);
  }

  private async ask(
    entry: ReplayEntry,
    nowMs: number,
    limits: ReplayLimits,
  ): Promise<ReplayClaim | ReplayStoreFault> {
    if (this.connection.state === 'refused') return 'settings';
    // Not connected: fail at once (enableOfflineQueue is off, so nothing would be queued anyway).
    if (this.connection.state !== 'open' || this.connection.client.status !== 'ready') return 'disconnected';
    const { client } = this.connection;
    if (this.inFlight >= MAX_COMMANDS_IN_FLIGHT) return 'busy';

    const holdMs = Math.min(MAX_HOLD_MS, Math.max(MIN_HOLD_MS, entry.acceptableUntilMs + 1 - nowMs));
    const prefix = this.settings.keyPrefix;
    const member = digest(`${entry.keyThumbprint} ${entry.jti}`);
    // In flight until Redis answers or the connection drops (socketTimeout bounds that), not until the
    // claim's own timeout: the bound is on what ioredis holds, not on what callers wait for.
    this.inFlight += 1;
    const command = client
      .claimDpopProof(
        `${prefix}jti:${member}`,
        `${prefix}key:${entry.keyThumbprint}`,
        `${prefix}sub:${entry.subject === undefined ? '' : digest(entry.subject)}`,
        `${prefix}since`,
        holdMs,
        limits.perKey,
        limits.perSubject,
        entry.subject === undefined ? 0 : 1,
        member,
        entry.issuedAtMs,
        HISTORY_ALLOWANCE_MS,
      )
      .finally(() => {
        this.inFlight -= 1;
      });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.settings.timeoutMs);
    });
    try {
      const reply = await Promise.race([command, timedOut]);
      if (reply === 'timeout') {
        command.catch(() => undefined); // its failure, if it comes, is already answered
        return 'timeout';
      }
      const claim = claimFromReply(reply);
      if (claim === 'error') return claim;
      if (this.said !== 'available') this.becomeAvailable();
      if (claim.historyBegan) this.hooks.onHistoryBegan(claim.sinceMs);
      return claim.claim;
    } catch (error) {
      // A command written just as the connection went (its `close` not yet handled) fails with the
      // connection, not with an answer of Redis's: that is `disconnected`, as for the claims after it.
      return client.status !== 'ready' || isConnectionLoss(error) ? 'disconnected' : 'error';
    } finally {
      clearTimeout(timer);
    }
  }

  /** @internal Redis's connection is ready, or it answered again after a fault. */
  becomeAvailable(): void {
    this.available = true;
    this.endFirstAttempt();
    if (this.said === 'available') return;
    // Back within STATE_LINE_DWELL_MS of going away: said when the dwell ends if still so, so that a store
    // timing out now and then gives a line every few seconds at most, not one per flap.
    const dwell = STATE_LINE_DWELL_MS - (performance.now() - this.saidUnavailableAt);
    if (dwell > 0) {
      this.availableLine ??= setTimeout(() => {
        this.availableLine = undefined;
        if (this.available) this.becomeAvailable();
      }, dwell).unref();
      return;
    }
    this.said = 'available';
    this.hooks.onState({ state: 'available', address: this.address, fallback: this.settings.fallback });
  }

  /** @internal Redis cannot be asked, for `cause`. */
  becomeUnavailable(cause: ReplayStoreFault, detail?: string): void {
    this.available = false;
    if (cause !== 'busy') this.endFirstAttempt();
    if (this.said === 'unavailable') return;
    this.said = 'unavailable';
    this.saidUnavailableAt = performance.now();
    this.hooks.onState({
      state: 'unavailable',
      cause,
      ...(detail === undefined ? {} : { detail }),
      address: this.address,
      fallback: this.settings.fallback,
    });
  }

  /** @internal */
  evictionPolicy(policy: string): void {
    this.hooks.onEvictionPolicy(policy);
  }
}

/** What the script answered, and whether this call began Redis's replay history (and when it began). */
interface ScriptAnswer {
  readonly claim: ReplayClaim;
  readonly sinceMs: number;
  readonly historyBegan: boolean;
}

/** An ioredis rejection for a connection that closed or broke, rather than a reply of Redis's. */
function isConnectionLoss(error: unknown): boolean {
  const { message, code } = (error ?? {}) as { message?: unknown; code?: unknown };
  return (
    (typeof message === 'string' && message.startsWith('Connection is closed')) ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ECONNREFUSED'
  );
}

function claimFromReply(reply: unknown): ScriptAnswer | 'error' {
  if (!Array.isArray(reply)) return 'error';
  const [code, waitMs, since, began] = reply as unknown[];
  const retryAfterSeconds = Math.max(1, Math.ceil(Number(waitMs) / 1000));
  const answer = (claim: ReplayClaim): ScriptAnswer => ({
    claim,
    sinceMs: Number(since),
    historyBegan: began === 1,
  });
  switch (code) {
    case 1:
      return answer({ kind: 'fresh' });
    case 2:
      return answer({ kind: 'replayed' });
    case 3:
      return answer({ kind: 'over_quota', share: 'key', retryAfterSeconds });
    case 4:
      return answer({ kind: 'over_quota', share: 'subject', retryAfterSeconds });
    case 5:
      // Issued before Redis's history began: whether it was seen is lost. Refused (never checked locally,
      // whatever `fallback` says: Redis answered); the client's next proof is issued after and passes.
      return answer({ kind: 'unavailable' });
    default:
      return 'error';
  }
}

/** A fixed-length name for a value of any length (a `jti`, a subject): SHA-256, base64url. */
function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** The URL to connect to: as given, or read from `url_file` and checked; or why there is none. */
function readUrl(
  settings: RedisReplayStoreSettings,
): { readonly url: string } | { readonly problem: string } {
  if ('given' in settings.url) return { url: settings.url.given };
  const text = readSettingsFile(settings.url.file, 'url_file');
  if (typeof text !== 'string') return text;
  const url = text.trim();
  // The message never quotes the file's content: it may hold a password.
  const problem = redisUrlProblem(url, 'allowed');
  return problem === undefined ? { url } : { problem: `the URL in url_file ${settings.url.file} ${problem}` };
}

function readSettingsFile(file: string, key: string): string | { readonly problem: string } {
  try {
    const bytes = readFileSync(file);
    if (bytes.length > MAX_SETTINGS_FILE_BYTES) {
      return { problem: `${key} ${file} is larger than ${MAX_SETTINGS_FILE_BYTES} bytes` };
    }
    return bytes.toString('utf8');
  } catch (error) {
    return { problem: `${key} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}

/** How the client connects to `url`, or why it cannot (a `ca_file` unreadable or beside a plain URL). */
function clientOptions(url: string, settings: RedisReplayStoreSettings): RedisOptions | string {
  let tls: RedisOptions['tls'];
  if (url.startsWith('rediss:')) {
    tls = {};
    if (settings.caFile !== undefined) {
      const ca = readSettingsFile(settings.caFile, 'ca_file');
      if (typeof ca !== 'string') return ca.problem;
      tls = { ca };
    }
  } else if (settings.caFile !== undefined) {
    return 'ca_file is set but the URL is not rediss:// (TLS)';
  }
  return {
    ...(tls === undefined ? {} : { tls }),
    connectionName: 'authz-dpop-replay',
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Commands a dead or paused server does not answer fail with the connection, which this drops once
    // nothing has come back for a while; reconnecting starts over (RECONNECT_*).
    socketTimeout: Math.max(1000, 4 * settings.timeoutMs),
    enableOfflineQueue: false, // while disconnected, claims fail at once instead of piling up
    maxRetriesPerRequest: 0, // a claim already answered is never sent again on the next connection
    enableAutoPipelining: true, // claims of one tick go out as one write
    retryStrategy: (attempt) =>
      Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 10)) +
      Math.floor(Math.random() * RECONNECT_BASE_MS),
    lazyConnect: false,
  };
}

/** The client with the claim script defined and its events told to the store. */
function watch(redis: Redis, url: string, store: RedisReplayStore): Redis & ClaimCommand {
  const client = redis as Redis & ClaimCommand;
  client.defineCommand('claimDpopProof', { numberOfKeys: 4, lua: CLAIM_SCRIPT });
  client.on('ready', () => {
    store.becomeAvailable();
    client.config('GET', 'maxmemory-policy').then(
      (reply) => {
        const policy = Array.isArray(reply) ? reply[1] : undefined;
        if (typeof policy === 'string' && policy !== 'noeviction') store.evictionPolicy(policy);
      },
      () => undefined, // many managed Redis services refuse CONFIG: nothing to say then
    );
  });
  // ioredis reports connection errors as events; without a listener they would end the process.
  client.on('error', (error: Error) => store.becomeUnavailable('disconnected', redisErrorDetail(error, url)));
  client.on('close', () => store.becomeUnavailable('disconnected'));
  return client;
}

/** A Redis error's message, with anything of the URL in it removed (a message could quote it). */
function redisErrorDetail(error: Error, url: string): string {
  return error.message.split(url).join(redisAddress(url)).slice(0, 300);
}
