import { randomInt, timingSafeEqual } from 'node:crypto';
import { ExpiringStore } from './expiring-store.js';

/** What the password step asked for, granted as-is once the second factor is done. Development only. */
export interface PendingGrant {
  readonly user: string;
  readonly scopes: readonly string[];
  readonly audience: string;
  readonly clientId: string;
}

/** Limits of the pending MFA transactions. Development only. */
export interface MfaTransactionLimits {
  /** How long a code is good for, in milliseconds (default 5 minutes). */
  readonly ttlMs?: number;
  /** Wrong codes allowed before the transaction is void (default 5). */
  readonly maxAttempts?: number;
  /** Pending transactions kept at most; the oldest is evicted to make room (default 1000). */
  readonly capacity?: number;
}

/** The outcome of presenting a code for an `mfa_token`. Development only. */
export type Redemption =
  | { readonly outcome: 'ok'; readonly grant: PendingGrant }
  | { readonly outcome: 'wrong_code'; readonly grant: PendingGrant; readonly attemptsLeft: number }
  /** Never issued, already used, expired, evicted, or voided by too many wrong codes. */
  | { readonly outcome: 'unknown' };

interface Pending {
  readonly grant: PendingGrant;
  readonly code: string;
  attemptsLeft: number;
}

const CODE = /^\d{6}$/;

/**
 * Pending multi-factor logins: each `mfa_token` (an `ExpiringStore` id: 32 random bytes, base64url) holds a
 * 6-digit one-time code, good for a few minutes, a few attempts, and one successful use. Held in memory and
 * bounded, because anyone who knows a demo password can open transactions. Development only.
 */
export class MfaTransactions {
  private readonly pending: ExpiringStore<Pending>;
  private readonly ttlMs: number;
  private readonly maxAttempts: number;

  constructor(now: () => number, limits: MfaTransactionLimits = {}) {
    this.ttlMs = limits.ttlMs ?? 5 * 60_000; // 5 minutes
    this.maxAttempts = limits.maxAttempts ?? 5;
    this.pending = new ExpiringStore(now, { ttlMs: this.ttlMs, capacity: limits.capacity ?? 1000 });
  }

  /** Opens a transaction for `grant`; the code goes to the user's "phone" (the log), the token to the client. */
  begin(grant: PendingGrant): { mfaToken: string; code: string; expiresInSeconds: number } {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const mfaToken = this.pending.add({ grant, code, attemptsLeft: this.maxAttempts });
    return { mfaToken, code, expiresInSeconds: Math.floor(this.ttlMs / 1000) };
  }

  /** The code of a pending transaction, for the simulated authenticator; undefined if there is none. */
  codeFor(mfaToken: string): string | undefined {
    return this.pending.get(mfaToken)?.code;
  }

  /**
   * Checks a code. A right code ends the transaction (single use); a wrong one uses up an attempt, and the
   * last wrong one ends it too. The comparison is constant-time.
   */
  redeem(mfaToken: string, otp: string): Redemption {
    const entry = this.pending.get(mfaToken);
    if (entry === undefined) return { outcome: 'unknown' };
    const right = CODE.test(otp) && timingSafeEqual(Buffer.from(otp), Buffer.from(entry.code));
    if (right) {
      this.pending.delete(mfaToken);
      return { outcome: 'ok', grant: entry.grant };
    }
    entry.attemptsLeft -= 1;
    if (entry.attemptsLeft <= 0) this.pending.delete(mfaToken);
    return { outcome: 'wrong_code', grant: entry.grant, attemptsLeft: entry.attemptsLeft };
  }

  /** How many transactions are pending (expired ones may still count until the next `begin`). */
  get size(): number {
    return this.pending.size;
  }
}
