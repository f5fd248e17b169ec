import type { AuthenticationContext } from './authentication-context.js';
import { ExpiringStore } from './expiring-store.js';

/**
 * What an authorization code stands for, and everything the token request must match (RFC 6749 section
 * 4.1.3, RFC 7636 section 4.6). Development only.
 */
export interface AuthorizationGrant extends AuthenticationContext {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly user: string;
  readonly scopes: readonly string[];
  readonly audience: string;
}

/** Limits of the authorization codes. Development only. */
export const AUTHORIZATION_CODE_LIMITS = Object.freeze({
  ttlMs: 60_000, // 60 seconds: RFC 6749 section 4.1.2 recommends at most 10 minutes; the app redeems at once
  capacity: 1000,
});

/**
 * Issued authorization codes (32 random bytes, base64url): single use, short-lived, bounded. A code is
 * consumed on its first presentation whatever the outcome, so a stolen code that loses the race is worth
 * nothing, and a code that fails PKCE cannot be retried (RFC 6749 section 4.1.2). Development only.
 */
export class AuthorizationCodes {
  private readonly store: ExpiringStore<AuthorizationGrant>;

  constructor(now: () => number) {
    this.store = new ExpiringStore(now, AUTHORIZATION_CODE_LIMITS);
  }

  /** A new code for `grant`. */
  issue(grant: AuthorizationGrant): string {
    return this.store.add(grant);
  }

  /** The grant of a live code, which is used up by this call; undefined if unknown, used or expired. */
  redeem(code: string): AuthorizationGrant | undefined {
    return this.store.take(code);
  }
}
