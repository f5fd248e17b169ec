import { findTokenChallenge, type TokenChallengeView } from './find-bearer-challenge.js';
import { parseWwwAuthenticate } from './parse-www-authenticate.js';

/** What a client asks the identity provider for, built from a challenge (RFC 6750 section 3, RFC 9470 section 3). */
export interface StepUpRequest {
  /** Space-separated scopes; absent when the client should use its own sign-in scopes (no token was sent). */
  readonly scope?: string;
  readonly acrValues?: string;
  /** Seconds, as a decimal string. */
  readonly maxAge?: string;
}

/** An API answer, as far as a step-up decision needs it. */
export interface ChallengedAnswer {
  readonly status: number;
  /** The `WWW-Authenticate` field value, or null when there was none. */
  readonly challenge: string | null;
}

/**
 * What the client should do about a refused call, decided from the server's challenge alone:
 * - `sign_in`: 401 without an error code (no token sent) or `invalid_token` (the token is no good): get a
 *   new token; for `invalid_token` with the scopes of the refused one.
 * - `scope`: 403 `insufficient_scope`: get a token for exactly the challenged scope.
 * - `authentication`: 401 `insufficient_user_authentication`: the same scopes, with the `acr_values` and
 *   `max_age` the challenge names (RFC 9470 section 4).
 * - `give_up`: nothing a new token can fix; `explanation` says why, for people.
 */
export type StepUpPlan =
  | {
      readonly kind: 'sign_in';
      readonly reason: 'no_token' | 'invalid_token';
      readonly request: StepUpRequest;
      readonly challenge: TokenChallengeView;
    }
  | { readonly kind: 'scope'; readonly request: StepUpRequest; readonly challenge: TokenChallengeView }
  | {
      readonly kind: 'authentication';
      readonly request: StepUpRequest;
      readonly challenge: TokenChallengeView;
    }
  | { readonly kind: 'give_up'; readonly explanation: string };

/**
 * Reads a refused answer's challenge and plans the next token request. The challenge may come under
 * `Bearer` or `DPoP` (RFC 9449 section 7.1: the same `error`, `scope`, `acr_values` and `max_age`); with
 * several, the one carrying the error is read (`findTokenChallenge`). `invalid_dpop_proof` and
 * `use_dpop_nonce` are for the code that makes proofs, not for a new token: they are `give_up` here.
 *
 * @param heldScope the scope of the token that was refused ('' when none was sent): kept when only the
 * login must be stronger or the token must be replaced.
 */
export function planStepUp(answer: ChallengedAnswer, heldScope: string): StepUpPlan {
  const parsed = parseWwwAuthenticate(answer.challenge ?? '');
  const challenge = parsed.ok ? findTokenChallenge(parsed.challenges) : undefined;
  if (challenge === undefined) {
    const why =
      answer.challenge === null
        ? 'none offered'
        : parsed.ok
          ? 'no Bearer or DPoP challenge'
          : parsed.error.message;
    return { kind: 'give_up', explanation: `No usable Bearer or DPoP challenge (${why}).` };
  }
  const held = heldScope.trim() === '' ? {} : { scope: heldScope.trim() };
  if (answer.status === 403 && challenge.error === 'insufficient_scope') {
    if (challenge.scope === undefined || challenge.scope.length === 0)
      return { kind: 'give_up', explanation: 'The server named no scope to ask for.' };
    return { kind: 'scope', request: { scope: challenge.scope.join(' ') }, challenge };
  }
  if (answer.status === 401 && challenge.error === 'insufficient_user_authentication') {
    return {
      kind: 'authentication',
      request: {
        ...held,
        ...(challenge.acrValues === undefined ? {} : { acrValues: challenge.acrValues.join(' ') }),
        ...(challenge.maxAge === undefined ? {} : { maxAge: String(challenge.maxAge) }),
      },
      challenge,
    };
  }
  if (answer.status === 401 && challenge.error === undefined)
    return { kind: 'sign_in', reason: 'no_token', request: {}, challenge };
  if (answer.status === 401 && challenge.error === 'invalid_token')
    return { kind: 'sign_in', reason: 'invalid_token', request: held, challenge };
  return {
    kind: 'give_up',
    explanation: `Nothing a new token can fix (status ${answer.status}, error "${challenge.error ?? ''}").`,
  };
}
