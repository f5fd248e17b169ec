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
  if (bearer === undefined) return undefined;

  const { params } = bearer;
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
