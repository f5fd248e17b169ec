import type { AuthenticationContext } from './authentication-context.js';
import { ExpiringStore } from './expiring-store.js';

/** The session cookie's name. Development only. */
export const SESSION_COOKIE = 'dev_idp_session';

/** Who is logged in at the provider, and how: what single sign-on reuses. Development only. */
export interface LoginSession extends AuthenticationContext {
  readonly user: string;
}

/** Limits of the login sessions. Development only. */
export const LOGIN_SESSION_LIMITS = Object.freeze({
  ttlMs: 60 * 60_000, // 1 hour
  capacity: 1000,
});

// A cookie value as this provider issues it: 32 random bytes, base64url.
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Password logins at the provider, so the browser app's next sign-in skips the password form (single
 * sign-on). The browser holds only a random id in an HttpOnly, SameSite=Lax cookie; the session lives here,
 * bounded, for an hour. Not Secure: the demo runs on plain http. Development only.
 */
export class LoginSessions {
  private readonly store: ExpiringStore<LoginSession>;

  constructor(now: () => number) {
    this.store = new ExpiringStore(now, LOGIN_SESSION_LIMITS);
  }

  /**
   * Starts a session and returns the `Set-Cookie` value that carries it: a browser-session cookie, while
   * the server-side session ends after an hour anyway.
   */
  start(session: LoginSession): string {
    const id = this.store.add(session);
    return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`;
  }

  /** The live session named by a `Cookie` header; undefined when there is none, or it is unknown or expired. */
  find(cookieHeader: string | undefined): LoginSession | undefined {
    for (const pair of (cookieHeader ?? '').split(';')) {
      const at = pair.indexOf('=');
      if (at === -1 || pair.slice(0, at).trim() !== SESSION_COOKIE) continue;
      const id = pair.slice(at + 1).trim();
      const session = SESSION_ID.test(id) ? this.store.get(id) : undefined;
      if (session !== undefined) return session;
    }
    return undefined;
  }
}
