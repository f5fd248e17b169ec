import type { Challenge } from './challenge.js';

/**
 * A Bearer challenge with the parameters of RFC 6750 section 3 and RFC 9470 section 3 read out. Each
 * field is present only when the challenge carried the parameter (and, for `maxAge`, a usable value);
 * `params` holds every auth-param as parsed, including extensions this view does not name.
 */
export interface BearerChallengeView {
  readonly realm?: string;
  /** RFC 6750 section 3.1 codes, `insufficient_user_authentication` (RFC 9470), or an extension code. */
  readonly error?: string;
  readonly errorDescription?: string;
  /** The `scope` value split on spaces (RFC 6750 section 3: a space-delimited list of scope tokens). */
  readonly scope?: readonly string[];
  /** The `acr_values` value split on spaces (RFC 9470 section 3: space-separated). */
  readonly acrValues?: readonly string[];
  /** `max_age` in seconds, when it is a non-negative integer (RFC 9470 section 3); absent otherwise. */
  readonly maxAge?: number;
  readonly params: ReadonlyMap<string, string>;
}

const DECIMAL_DIGITS = /^[0-9]+$/;

/** A space-delimited list (RFC 6750 section 3); runs of spaces and outer spaces make no empty items. */
function spaceDelimited(value: string): string[] {
  return value.split(' ').filter((item) => item !== '');
}

/**
 * A challenge under either scheme an access token is sent with: `Bearer` (RFC 6750 section 3) or `DPoP`
 * (RFC 9449 section 7.1, which takes the same error parameters and adds `algs`).
 */
export interface TokenChallengeView extends BearerChallengeView {
  /** Which scheme the challenge came under, spelled canonically whatever case the server used. */
  readonly scheme: TokenScheme;
  /** A `DPoP` challenge's `algs` split on spaces: the proof algorithms the server accepts. */
  readonly algs?: readonly string[];
}

/** The authorization schemes that carry an access token. */
export type TokenScheme = 'Bearer' | 'DPoP';

const TOKEN_SCHEMES: ReadonlyMap<string, TokenScheme> = new Map([
  ['bearer', 'Bearer'],
  ['dpop', 'DPoP'],
]);

/**
 * Finds the first Bearer challenge among parsed challenges and reads its parameters. The scheme is
 * compared case-insensitively (RFC 9110 section 11.1). A `Bearer` challenge in token68 form is skipped:
 * RFC 6750 section 3 defines the Bearer challenge as auth-params only, so such a challenge has nothing
 * this view could report.
 *
 * @returns the view, or `undefined` when no Bearer challenge was offered.
 */
export function findBearerChallenge(challenges: readonly Challenge[]): BearerChallengeView | undefined {
  const bearer = challenges.find(
    (challenge) => challenge.scheme.toLowerCase() === 'bearer' && challenge.token68 === undefined,
  );
  return bearer === undefined ? undefined : readView(bearer.params);
}

/**
 * Finds the challenge that says why a token was refused, under `Bearer` or `DPoP`. A server that accepts
 * both answers with one challenge per scheme, the error under the scheme the client used and the other bare
 * (RFC 9449 section 7.1), so the first Bearer or DPoP challenge carrying an `error` is taken, else the first
 * of either. Schemes compare case-insensitively; token68 forms are skipped, as for `findBearerChallenge`.
 *
 * @returns the view, or `undefined` when neither scheme was offered.
 */
export function findTokenChallenge(challenges: readonly Challenge[]): TokenChallengeView | undefined {
  const candidates = challenges.filter(
    (challenge) => TOKEN_SCHEMES.has(challenge.scheme.toLowerCase()) && challenge.token68 === undefined,
  );
  const chosen = candidates.find((challenge) => challenge.params.has('error')) ?? candidates[0];
  if (chosen === undefined) return undefined;
  const algs = chosen.params.get('algs');
  return {
    scheme: TOKEN_SCHEMES.get(chosen.scheme.toLowerCase())!,
    ...readView(chosen.params),
    ...(algs !== undefined && { algs: spaceDelimited(algs) }),
  };
}

/** The RFC 6750 section 3 and RFC 9470 section 3 parameters, read out of a challenge's auth-params. */
function readView(params: ReadonlyMap<string, string>): BearerChallengeView {
  const realm = params.get('realm');
  const error = params.get('error');
  const errorDescription = params.get('error_description');
  const scope = params.get('scope');
  const acrValues = params.get('acr_values');
  const maxAge = params.get('max_age');
  const maxAgeSeconds = maxAge !== undefined && DECIMAL_DIGITS.test(maxAge) ? Number(maxAge) : undefined;

  return {
    ...(realm !== undefined && { realm }),
    ...(error !== undefined && { error }),
    ...(errorDescription !== undefined && { errorDescription }),
    ...(scope !== undefined && { scope: spaceDelimited(scope) }),
    ...(acrValues !== undefined && { acrValues: spaceDelimited(acrValues) }),
    // Number() of a long digit string loses precision; such a value is not one a server meant.
    ...(maxAgeSeconds !== undefined && Number.isSafeInteger(maxAgeSeconds) && { maxAge: maxAgeSeconds }),
    params,
  };
}
