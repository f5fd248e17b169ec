import type { ReplayClaim } from '../authz/possession-proof.js';

/** One proof to remember: its `jti`, whose key and token it came with, and until when it could be replayed. */
export interface ReplayEntry {
  /** The RFC 7638 thumbprint of the proof's key (the token's `cnf.jkt`). */
  readonly keyThumbprint: string;
  readonly jti: string;
  /** Whose token it was (issuer and `sub`), when the token names a subject. */
  readonly subject?: string;
  /** The proof's `iat`, in milliseconds since the epoch. */
  readonly issuedAtMs: number;
  /** The last moment a proof with this `iat` could still be accepted, in milliseconds since the epoch. */
  readonly acceptableUntilMs: number;
}

/** How much of the store one key, one subject and everyone together may hold (`dpop.replay_cache_*`). */
export interface ReplayLimits {
  readonly total: number;
  readonly perKey: number;
  readonly perSubject: number;
}

/**
 * Where the `jti` values of accepted DPoP proofs are remembered, to refuse a proof seen before (RFC 9449
 * section 11.1). `claim` is one atomic step: a `jti` already held is a replay, else it is remembered, unless
 * its key or subject already holds its share (the cost stays with the client that causes it) or the store is
 * full. The core claims a proof only once its token verified, the proof verified and the proof's key matched
 * the token's binding, so filling a share takes a valid token and the private key it is bound to.
 */
export interface ReplayStore {
  claim(entry: ReplayEntry, nowMs: number, limits: ReplayLimits): ReplayClaim | Promise<ReplayClaim>;
  /** How many `jti` values are held now (for the gauge). */
  readonly size: number;
}

/** Entries expire in whole seconds: an entry is kept until the end of the second its proof stops being acceptable. */
const BUCKET_MS = 1000; // 1 second

/**
 * The longest an entry is held, in seconds: beyond any proof window the schema allows (`max_age` at most
 * 10 minutes plus `clock_tolerance` at most 1 minute), so it only bounds the work of dropping buckets.
 */
const MAX_HOLD_SECONDS = 3600; // 1 hour

/** What one key or one subject holds: a count, and when its entries expire, oldest first (for Retry-After). */
class Share {
  count = 0;
  /** Expiry seconds in the order the entries came; read from `head`. May lag behind entries already gone. */
  private readonly expiries: number[] = [];
  private head = 0;

  constructor(readonly name: string) {}

  add(expirySecond: number): void {
    this.count += 1;
    this.expiries.push(expirySecond);
  }

  /** Seconds until the oldest entry still held (as they came) expires: when a refused client may try again. */
  retryAfterSeconds(nowSecond: number): number {
    while (this.head < this.expiries.length && this.expiries[this.head]! <= nowSecond) this.head += 1;
    if (this.head > 64 && this.head * 2 > this.expiries.length) {
      this.expiries.splice(0, this.head);
      this.head = 0;
    }
    const next = this.expiries[this.head];
    return next === undefined ? 1 : Math.max(1, next - nowSecond);
  }
}

interface HeldEntry {
  readonly key: Share;
  readonly subject: Share | undefined;
}

/**
 * The replay store of one process: a map of held `jti` values with their expiry in one-second buckets, so
 * that inserting and expiring are O(1) per entry and nothing on the request path scans the store (each entry
 * is dropped once, with its bucket, when its second has passed). Per key and per subject it counts what is
 * held, to refuse a client over its share while every other client keeps its own.
 */
export class MemoryReplayStore implements ReplayStore {
  /** `thumbprint jti` → the shares it counts against. */
  private readonly entries = new Map<string, HeldEntry>();
  /** Expiry second → the entries that expire then. */
  private readonly buckets = new Map<number, string[]>();
  private readonly keys = new Map<string, Share>();
  private readonly subjects = new Map<string, Share>();
  /** Every bucket up to this second has been dropped. */
  private droppedThrough = -Infinity;
  /** The latest expiry second held: once it has passed, everything has. */
  private latestExpiry = -Infinity;

  get size(): number {
    return this.entries.size;
  }

  claim(entry: ReplayEntry, nowMs: number, limits: ReplayLimits): ReplayClaim {
    const nowSecond = Math.floor(nowMs / BUCKET_MS);
    this.dropExpired(nowSecond);
    const id = `${entry.keyThumbprint} ${entry.jti}`;
    if (this.entries.has(id)) return { kind: 'replayed' };

    const key = this.keys.get(entry.keyThumbprint);
    if (key !== undefined && key.count >= limits.perKey) {
      return { kind: 'over_quota', share: 'key', retryAfterSeconds: key.retryAfterSeconds(nowSecond) };
    }
    const subject = entry.subject === undefined ? undefined : this.subjects.get(entry.subject);
    if (subject !== undefined && subject.count >= limits.perSubject) {
      return {
        kind: 'over_quota',
        share: 'subject',
        retryAfterSeconds: subject.retryAfterSeconds(nowSecond),
      };
    }
    if (this.entries.size >= limits.total) return { kind: 'full' };

    // Kept until the end of the second in which the proof stops being acceptable: longer, never shorter.
    const expirySecond = Math.min(
      nowSecond + MAX_HOLD_SECONDS,
      Math.max(nowSecond + 1, Math.ceil((entry.acceptableUntilMs + 1) / BUCKET_MS)),
    );
    const keyShare = key ?? this.newShare(this.keys, entry.keyThumbprint);
    const subjectShare =
      entry.subject === undefined ? undefined : (subject ?? this.newShare(this.subjects, entry.subject));
    keyShare.add(expirySecond);
    subjectShare?.add(expirySecond);
    this.entries.set(id, { key: keyShare, subject: subjectShare });
    const bucket = this.buckets.get(expirySecond);
    if (bucket === undefined) this.buckets.set(expirySecond, [id]);
    else bucket.push(id);
    if (expirySecond > this.latestExpiry) this.latestExpiry = expirySecond;
    return { kind: 'fresh' };
  }

  private newShare(shares: Map<string, Share>, name: string): Share {
    const share = new Share(name);
    shares.set(name, share);
    return share;
  }

  /**
   * Drops the buckets whose second has passed. Each second is looked at once, and at most MAX_HOLD_SECONDS
   * of them after an idle spell (past the latest expiry, everything goes at once); each entry is dropped once.
   */
  private dropExpired(nowSecond: number): void {
    if (nowSecond <= this.droppedThrough) return; // nothing new has expired (or the clock went back)
    if (nowSecond >= this.latestExpiry) {
      this.entries.clear();
      this.buckets.clear();
      this.keys.clear();
      this.subjects.clear();
    } else {
      for (let second = this.droppedThrough + 1; second <= nowSecond; second += 1) {
        const bucket = this.buckets.get(second);
        if (bucket === undefined) continue;
        this.buckets.delete(second);
        for (const id of bucket) this.drop(id);
      }
    }
    this.droppedThrough = nowSecond;
  }

  private drop(id: string): void {
    const held = this.entries.get(id);
    if (held === undefined) return;
    this.entries.delete(id);
    release(this.keys, held.key);
    if (held.subject !== undefined) release(this.subjects, held.subject);
  }
}

/** One entry of `share` is gone; a share that holds nothing is forgotten. */
function release(shares: Map<string, Share>, share: Share): void {
  share.count -= 1;
  if (share.count === 0) shares.delete(share.name);
}
