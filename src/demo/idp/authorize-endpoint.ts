import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { authenticatedNow, type AuthenticationContext } from './authentication-context.js';
import type { AuthorizationCodes } from './authorization-codes.js';
import { authorizationResponse } from './authorization-response.js';
import { AuthorizeError, type AuthorizeErrorCode, type RedirectTarget } from './authorize-error.js';
import { parseAuthorizeRequest, type AuthorizeRequest } from './authorize-request.js';
import { authenticateDemoUser } from './demo-users.js';
import { ExpiringStore } from './expiring-store.js';
import type { LoginSession, LoginSessions } from './login-sessions.js';
import { mfaReasons } from './mfa-rule.js';
import type { MfaTransactions } from './mfa-transactions.js';
import { OAuthError } from './oauth-error.js';
import type { HtmlReply, Reply } from './reply.js';
import { readFormParams } from './request-body.js';
import { errorPage, loginPage, mfaPage } from './sign-in-pages.js';

/** What the authorization endpoint needs from the development identity provider. Development only. */
export interface AuthorizeEndpointOptions {
  readonly issuer: string;
  readonly audience: string;
  /** Registered redirect URIs of the browser app, compared by exact string. */
  readonly redirectUris: readonly string[];
  /** Headers of every sign-in page (`pageHeaders`). */
  readonly pageHeaders: Readonly<Record<string, string>>;
  readonly transactions: MfaTransactions;
  readonly codes: AuthorizationCodes;
  readonly sessions: LoginSessions;
  readonly logger: Logger;
  readonly now: () => number;
}

/** Limits of pending sign-ins (a request waiting for its password or code). Development only. */
export const SIGN_IN_LIMITS = Object.freeze({
  ttlMs: 10 * 60_000, // 10 minutes to type a password and a code
  capacity: 1000,
  maxPasswordAttempts: 5,
});

/** A validated authorization request waiting for the person. Development only. */
interface PendingSignIn {
  readonly request: AuthorizeRequest;
  passwordAttemptsLeft: number;
  /** Set once the user is known and a second factor is pending; the mfa token never leaves the server. */
  mfa: { readonly user: string; readonly mfaToken: string } | undefined;
}

/** The same answer for an unknown user and a wrong password, so neither can be told from the other. */
const WRONG_LOGIN = 'Wrong username or password.';
const EXPIRED = 'This sign-in has expired; start again from the app.';

/**
 * The authorization endpoint of the development identity provider (RFC 6749 section 4.1 with PKCE, RFC 7636)
 * and its two sign-in forms: `GET /authorize` checks the request and shows the password form (or, with a
 * login session, skips it), `POST /authorize/login` checks the password, `POST /authorize/mfa` the one-time
 * code when `mfaReasons` asks for one. Success is a 303 to the app with a single-use code. Development only.
 */
export class AuthorizeEndpoint {
  private readonly pending: ExpiringStore<PendingSignIn>;

  constructor(private readonly options: AuthorizeEndpointOptions) {
    this.pending = new ExpiringStore(options.now, SIGN_IN_LIMITS);
  }

  /** `GET /authorize`. */
  authorize(request: IncomingMessage, query: URLSearchParams): Reply {
    const { logger } = this.options;
    let authorization: AuthorizeRequest;
    try {
      authorization = parseAuthorizeRequest(query, this.options);
    } catch (error) {
      if (!(error instanceof AuthorizeError)) throw error;
      logger.info(
        { event: 'authorize_refused', error: error.code, redirected: error.target !== undefined },
        `authorization request refused: ${error.code} (development only)`,
      );
      return this.refuse(error.target, error.code, error.message);
    }
    const { clientId, scopes, prompt } = authorization;
    logger.info(
      {
        event: 'authorize_request',
        client_id: clientId,
        scopes,
        prompt,
        acr_values: authorization.acrValues,
      },
      `authorization request from ${clientId} for "${scopes.join(' ')}" (development only)`,
    );
    const session = prompt === 'login' ? undefined : this.usableSession(request, authorization);
    const needsMfa = mfaReasons(authorization).length > 0;
    if (prompt === 'none' && (session === undefined || needsMfa)) {
      // OpenID Connect Core section 3.1.2.6: the user would have to log in, and may not be asked to.
      return this.refuse(authorization, 'login_required', 'the user must log in');
    }
    if (session === undefined) {
      const txn = this.pending.add({
        request: authorization,
        passwordAttemptsLeft: SIGN_IN_LIMITS.maxPasswordAttempts,
        mfa: undefined,
      });
      return loginPage({ txn, clientId, scopes }, this.options.pageHeaders);
    }
    if (!needsMfa) return this.issueCode(authorization, session.user, session);
    // The session stands in for the password, so this sign-in takes no password: only the second factor.
    const pending: PendingSignIn = { request: authorization, passwordAttemptsLeft: 0, mfa: undefined };
    return this.beginMfa(this.pending.add(pending), pending, session.user);
  }

  /** `POST /authorize/login`: `txn`, `username`, `password`. */
  async login(request: IncomingMessage): Promise<Reply> {
    const form = await this.readForm(request);
    if ('kind' in form) return form;
    const txn = form.get('txn') ?? '';
    const pending = this.pending.get(txn);
    if (pending === undefined || pending.mfa !== undefined) return this.expired();
    const { request: authorization } = pending;
    const user = authenticateDemoUser(form.get('username') ?? '', form.get('password') ?? '');
    if (user === undefined) {
      pending.passwordAttemptsLeft -= 1;
      // Neither the username nor the password is logged: a password typed into the wrong field is still a password.
      this.options.logger.info(
        {
          event: 'login_failed',
          client_id: authorization.clientId,
          attempts_left: pending.passwordAttemptsLeft,
        },
        'login failed: wrong username or password (development only)',
      );
      if (pending.passwordAttemptsLeft > 0) {
        const view = {
          txn,
          clientId: authorization.clientId,
          scopes: authorization.scopes,
          error: WRONG_LOGIN,
        };
        return loginPage(view, this.options.pageHeaders);
      }
      this.pending.delete(txn);
      return this.refuse(authorization, 'access_denied', 'too many wrong passwords');
    }
    const login = authenticatedNow('password', this.options.now());
    const setCookie = { 'set-cookie': this.options.sessions.start({ user, ...login }) };
    if (mfaReasons(authorization).length === 0) {
      this.pending.delete(txn);
      return this.issueCode(authorization, user, login, setCookie);
    }
    const page = this.beginMfa(txn, pending, user);
    return { ...page, headers: { ...page.headers, ...setCookie } };
  }

  /** `POST /authorize/mfa`: `txn`, `otp`. */
  async mfa(request: IncomingMessage): Promise<Reply> {
    const { logger, transactions } = this.options;
    const form = await this.readForm(request);
    if ('kind' in form) return form;
    const txn = form.get('txn') ?? '';
    const pending = this.pending.get(txn);
    if (pending === undefined || pending.mfa === undefined) return this.expired();
    const { request: authorization, mfa } = pending;
    const redemption = transactions.redeem(mfa.mfaToken, form.get('otp') ?? '');
    if (redemption.outcome === 'unknown') {
      this.pending.delete(txn);
      return this.refuse(authorization, 'access_denied', 'the one-time code expired');
    }
    if (redemption.outcome === 'wrong_code') {
      const { attemptsLeft } = redemption;
      logger.info(
        { event: 'mfa_failed', user: mfa.user, attempts_left: attemptsLeft },
        `wrong MFA code for ${mfa.user}, ${attemptsLeft} attempts left (development only)`,
      );
      const code = attemptsLeft > 0 ? transactions.codeFor(mfa.mfaToken) : undefined;
      if (code === undefined) {
        this.pending.delete(txn);
        return this.refuse(authorization, 'access_denied', 'too many wrong one-time codes');
      }
      const error = `That code is wrong. ${attemptsLeft} ${attemptsLeft === 1 ? 'attempt' : 'attempts'} left.`;
      return this.mfaPage(txn, authorization, code, error);
    }
    this.pending.delete(txn);
    return this.issueCode(authorization, mfa.user, authenticatedNow('mfa', this.options.now()));
  }

  /** A session that may stand in for the password: none when `max_age` wants a more recent login. */
  private usableSession(request: IncomingMessage, authorization: AuthorizeRequest): LoginSession | undefined {
    const session = this.options.sessions.find(request.headers.cookie);
    if (session === undefined || authorization.maxAgeSeconds === undefined) return session;
    const ageSeconds = Math.floor(this.options.now() / 1000) - session.authTimeSeconds;
    return ageSeconds <= authorization.maxAgeSeconds ? session : undefined;
  }

  /** Opens the second factor for `user`; the code goes to the page's demo authenticator and the log. */
  private beginMfa(txn: string, pending: PendingSignIn, user: string): Reply {
    const { logger, transactions } = this.options;
    const { request: authorization } = pending;
    const { mfaToken, code, expiresInSeconds } = transactions.begin({
      user,
      scopes: authorization.scopes,
      audience: authorization.audience,
      clientId: authorization.clientId,
    });
    pending.mfa = { user, mfaToken };
    const reasons = mfaReasons(authorization);
    logger.info(
      { event: 'mfa_required', user, scopes: authorization.scopes, reasons },
      `MFA required for ${user}: ${reasons.join(', ')} (development only)`,
    );
    // This line stands in for the user's phone, as on the token endpoint; `npm run demo` reads it.
    logger.info(
      { event: 'mfa_code', user, code, expires_in: expiresInSeconds },
      `MFA code for ${user}: ${code} (development only)`,
    );
    return this.mfaPage(txn, authorization, code, undefined);
  }

  private mfaPage(
    txn: string,
    authorization: AuthorizeRequest,
    code: string,
    error: string | undefined,
  ): Reply {
    return mfaPage(
      {
        txn,
        clientId: authorization.clientId,
        scopes: authorization.scopes,
        reasons: mfaReasons(authorization),
        maxAgeSeconds: authorization.maxAgeSeconds,
        code,
        ...(error === undefined ? {} : { error }),
      },
      this.options.pageHeaders,
    );
  }

  /** Ends a sign-in well: a single-use code for exactly what was asked, sent to the app (RFC 6749 section 4.1.2). */
  private issueCode(
    authorization: AuthorizeRequest,
    user: string,
    login: AuthenticationContext,
    headers: Readonly<Record<string, string>> = {},
  ): Reply {
    const { clientId, redirectUri, codeChallenge, scopes, audience } = authorization;
    const code = this.options.codes.issue({
      clientId,
      redirectUri,
      codeChallenge,
      user,
      scopes,
      audience,
      ...login,
    });
    // The code itself is never logged: with the verifier it is a token.
    this.options.logger.info(
      { event: 'code_issued', user, scopes, client_id: clientId, acr: login.acr },
      `authorization code issued to ${clientId} for ${user}, "${scopes.join(' ')}" (development only)`,
    );
    return authorizationResponse(authorization, this.options.issuer, { code }, headers);
  }

  /** An error for the app by redirect when the redirect URI is trusted, otherwise a page for the person. */
  private refuse(target: RedirectTarget | undefined, error: AuthorizeErrorCode, description: string): Reply {
    if (target === undefined) return errorPage(400, description, this.options.pageHeaders);
    return authorizationResponse(target, this.options.issuer, { error, error_description: description });
  }

  private expired(): Reply {
    return errorPage(400, EXPIRED, this.options.pageHeaders);
  }

  /** The posted form, or the error page for a body that is too large, of another type, or repeats a field. */
  private async readForm(request: IncomingMessage): Promise<ReadonlyMap<string, string> | HtmlReply> {
    try {
      return await readFormParams(request);
    } catch (error) {
      if (error instanceof OAuthError)
        return errorPage(error.status, error.message, this.options.pageHeaders);
      throw error;
    }
  }
}
