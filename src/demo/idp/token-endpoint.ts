import type { Logger } from 'pino';
import { signAccessToken } from './access-token.js';
import { authenticatedNow, type AuthenticationContext } from './authentication-context.js';
import type { AuthorizationCodes } from './authorization-codes.js';
import { authenticateDemoUser } from './demo-users.js';
import { tokenEndpointUrl } from './discovery-document.js';
import { verifyTokenRequestProof } from './dpop-proof.js';
import type { JsonReply } from './json-reply.js';
import { mfaReasons, type MfaReason } from './mfa-rule.js';
import type { MfaTransactions, PendingGrant } from './mfa-transactions.js';
import { OAuthError } from './oauth-error.js';
import { verifierMatchesChallenge } from './pkce.js';
import type { SigningKeyRing } from './signing-keys.js';
import {
  parseTokenRequest,
  type AuthorizationCodeGrantRequest,
  type MfaOtpGrantRequest,
  type PasswordGrantRequest,
} from './token-request.js';

/** What the token endpoint needs from the development identity provider. Development only. */
export interface TokenEndpointOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtlSeconds: number;
  readonly keys: SigningKeyRing;
  readonly transactions: MfaTransactions;
  readonly codes: AuthorizationCodes;
  readonly logger: Logger;
  readonly now: () => number;
}

/** The same answer for an unknown user and a wrong password, so neither can be told from the other. */
const WRONG_LOGIN = 'Wrong username or password.';

const REASON_TEXT: Record<MfaReason, string> = {
  scope: 'transfer:funds requested',
  acr_values: 'acr_values asks for urn:bank:mfa',
  max_age: 'max_age asks for a fresh login',
};

/**
 * `POST /oauth/token` of the development identity provider, after the body is read: the password grant
 * (answered `mfa_required` when the MFA rule applies, as Auth0's MFA API does), the mfa-otp grant that
 * completes it, and the authorization code grant with PKCE for the browser app. Development only.
 */
export class TokenEndpoint {
  constructor(private readonly options: TokenEndpointOptions) {}

  /**
   * Answers a token request; OAuth errors become their replies, anything else is thrown.
   *
   * @param dpop the request's `DPoP` header lines: with a valid proof the token is bound to its key
   * (RFC 9449 section 5); none, a bearer token as before.
   */
  async handle(params: ReadonlyMap<string, string>, dpop: readonly string[] = []): Promise<JsonReply> {
    try {
      const request = parseTokenRequest(params, this.options.audience);
      // Checked before the grant, so a bad proof does not use up a code or an MFA transaction.
      const dpopJkt = await verifyTokenRequestProof(dpop, {
        tokenEndpoint: tokenEndpointUrl(this.options.issuer),
        nowMs: this.options.now(),
      });
      switch (request.grantType) {
        case 'password':
          return await this.passwordGrant(request, dpopJkt);
        case 'authorization_code':
          return await this.authorizationCodeGrant(request, dpopJkt);
        default:
          return await this.mfaOtpGrant(request, dpopJkt);
      }
    } catch (error) {
      if (error instanceof OAuthError) return error.reply();
      throw error;
    }
  }

  private async passwordGrant(
    request: PasswordGrantRequest,
    dpopJkt: string | undefined,
  ): Promise<JsonReply> {
    const { logger } = this.options;
    const user = authenticateDemoUser(request.username, request.password);
    if (user === undefined) {
      // Neither the username nor the password is logged: a password typed into the wrong field is still a password.
      logger.info({ event: 'login_failed' }, 'login failed: wrong username or password (development only)');
      throw new OAuthError(403, 'invalid_grant', WRONG_LOGIN);
    }
    const grant: PendingGrant = {
      user,
      scopes: request.scopes,
      audience: request.audience,
      clientId: request.clientId,
    };
    const reasons = mfaReasons(request);
    if (reasons.length === 0) {
      const nowMs = this.options.now();
      return this.issue(grant, authenticatedNow('password', nowMs), nowMs, dpopJkt);
    }

    const { mfaToken, code, expiresInSeconds } = this.options.transactions.begin(grant);
    logger.info(
      { event: 'mfa_required', user, scopes: grant.scopes, reasons },
      `MFA required for ${user}: ${reasons.map((reason) => REASON_TEXT[reason]).join(', ')} (development only)`,
    );
    // This line stands in for the user's phone: the development provider has no way to reach one.
    logger.info(
      { event: 'mfa_code', user, code, expires_in: expiresInSeconds },
      `MFA code for ${user}: ${code} (development only)`,
    );
    return {
      status: 403,
      body: {
        error: 'mfa_required',
        error_description: 'Multi-factor authentication required',
        mfa_token: mfaToken,
      },
    };
  }

  /** The token is bound to the key of this request's proof, if any: the one that receives the token. */
  private async mfaOtpGrant(request: MfaOtpGrantRequest, dpopJkt: string | undefined): Promise<JsonReply> {
    const { logger } = this.options;
    const redemption = this.options.transactions.redeem(request.mfaToken, request.otp);
    if (redemption.outcome === 'unknown') {
      throw new OAuthError(403, 'expired_token', 'the mfa_token is unknown, used or expired');
    }
    if (redemption.outcome === 'wrong_code') {
      const { user } = redemption.grant;
      const attemptsLeft = redemption.attemptsLeft;
      logger.info(
        { event: 'mfa_failed', user, attempts_left: attemptsLeft },
        `wrong MFA code for ${user}, ${attemptsLeft} attempts left (development only)`,
      );
      throw new OAuthError(403, 'invalid_grant', 'the one-time code is wrong');
    }
    const nowMs = this.options.now();
    return this.issue(redemption.grant, authenticatedNow('mfa', nowMs), nowMs, dpopJkt);
  }

  /**
   * Trades a code for a token (RFC 6749 section 4.1.3). The code is used up before anything is checked, so
   * every failure is final; all of them answer the same 400 `invalid_grant` (RFC 6749 section 5.2), and a
   * wrong verifier is not told apart from a wrong code (RFC 7636 section 4.6).
   */
  private async authorizationCodeGrant(
    request: AuthorizationCodeGrantRequest,
    dpopJkt: string | undefined,
  ): Promise<JsonReply> {
    const grant = this.options.codes.redeem(request.code);
    if (grant === undefined) throw invalidGrant('the code is unknown, used or expired');
    if (grant.clientId !== request.clientId || grant.redirectUri !== request.redirectUri)
      throw invalidGrant('the code was issued to another client_id or redirect_uri');
    if (!verifierMatchesChallenge(request.codeVerifier, grant.codeChallenge))
      throw invalidGrant('the code_verifier does not match the code_challenge');
    const { user, scopes, audience, clientId, acr, amr, authTimeSeconds } = grant;
    return this.issue(
      { user, scopes, audience, clientId },
      { acr, amr, authTimeSeconds },
      this.options.now(),
      dpopJkt,
    );
  }

  /**
   * Signs a token for `grant` at `nowMs`, with the claims of the login that earned it; bound to `dpopJkt`
   * when given (`cnf.jkt`, answered as `token_type: DPoP`, RFC 9449 section 5).
   */
  private async issue(
    grant: PendingGrant,
    login: AuthenticationContext,
    nowMs: number,
    dpopJkt: string | undefined,
  ): Promise<JsonReply> {
    const { issuer, accessTokenTtlSeconds, keys, logger } = this.options;
    const seconds = Math.floor(nowMs / 1000);
    const { acr, amr } = login;
    const key = keys.current;
    const { token, jti } = await signAccessToken(key, {
      issuer,
      audience: grant.audience,
      subject: grant.user,
      scopes: grant.scopes,
      clientId: grant.clientId,
      issuedAt: seconds,
      ttlSeconds: accessTokenTtlSeconds,
      authTime: login.authTimeSeconds,
      acr,
      amr,
      ...(dpopJkt === undefined ? {} : { dpopJkt }),
    });
    const tokenType = dpopJkt === undefined ? 'Bearer' : 'DPoP';
    const scope = grant.scopes.join(' ');
    logger.info(
      {
        event: 'token_issued',
        user: grant.user,
        scopes: grant.scopes,
        acr,
        amr,
        client_id: grant.clientId,
        kid: key.kid,
        jti,
        token_type: tokenType,
        ...(dpopJkt === undefined ? {} : { jkt: dpopJkt }),
      },
      `${tokenType} access token issued to ${grant.user} for "${scope}" (${acr}, development only)`,
    );
    return {
      status: 200,
      body: { access_token: token, token_type: tokenType, expires_in: accessTokenTtlSeconds, scope },
    };
  }
}

function invalidGrant(description: string): OAuthError {
  return new OAuthError(400, 'invalid_grant', description);
}
