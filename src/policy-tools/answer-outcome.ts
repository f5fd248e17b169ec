import type { Answer } from '../authz/answer-for-decision.js';
import { type Challenge, findBearerChallenge, parseWwwAuthenticate } from '../client/index.js';
import type { Authorization } from '../authz/authorize.js';

/**
 * A denial as a client sees it: the status, the error, and what the challenge asks for. Read back from the
 * answer's headers and body with the client's own parser, so that tests and diffs check what goes over the
 * wire rather than the decision's internals. The challenge read is the one carrying the error (RFC 9449
 * section 7.1: `Bearer` or `DPoP`), else the first.
 */
export interface DenialOutcome {
  readonly status: number;
  /** The scheme of that challenge (`Bearer`, `DPoP`), when the answer challenges. */
  readonly scheme?: string;
  /** The challenge's `error`, or the body's `error` when the answer carries no challenge error. */
  readonly error: string | undefined;
  /** The challenge's `scope`, its tokens joined by one space. */
  readonly scope?: string;
  /** The challenge's `acr_values`, its values joined by one space. */
  readonly acrValues?: string;
  /** The challenge's `max_age`, in seconds. */
  readonly maxAge?: number;
}

/** The outcome of one request: allowed, denied, or allowed under report-only with a logged denial. */
export type Outcome =
  | { readonly kind: 'allow' }
  | { readonly kind: 'deny'; readonly denial: DenialOutcome }
  | { readonly kind: 'would_deny'; readonly denial: DenialOutcome };

/** Reads the outcome off an authorization's answers. Pure. */
export function outcomeOf(authorization: Authorization): Outcome {
  const { answer, wouldDenyAnswer } = authorization;
  if (answer.kind === 'deny') return { kind: 'deny', denial: denialOutcome(answer) };
  if (wouldDenyAnswer?.kind === 'deny') return { kind: 'would_deny', denial: denialOutcome(wouldDenyAnswer) };
  return { kind: 'allow' };
}

/**
 * One line for people and for comparing outcomes: `allow`,
 * `403 insufficient_scope scope="transfer:funds"`, `401 insufficient_user_authentication
 * acr_values="urn:bank:mfa" max_age=600`, `allow (report-only: would deny 403 ...)`.
 */
export function describeOutcome(outcome: Outcome): string {
  if (outcome.kind === 'allow') return 'allow';
  const denial = describeDenial(outcome.denial);
  return outcome.kind === 'deny' ? denial : `allow (report-only: would deny ${denial})`;
}

/**
 * `403 insufficient_scope scope="transfer:funds"`: status, error and the challenge's step-up parameters,
 * then the challenge's scheme when it is not Bearer (`401 invalid_dpop_proof (DPoP)`).
 */
export function describeDenial(denial: Partial<DenialOutcome>): string {
  const parts: string[] = [];
  if (denial.status !== undefined) parts.push(String(denial.status));
  if (denial.error !== undefined) parts.push(denial.error);
  if (denial.scope !== undefined) parts.push(`scope="${denial.scope}"`);
  if (denial.acrValues !== undefined) parts.push(`acr_values="${denial.acrValues}"`);
  if (denial.maxAge !== undefined) parts.push(`max_age=${denial.maxAge}`);
  // Bearer is what every answer said before DPoP; only another scheme is worth a word, last.
  if (denial.scheme !== undefined && denial.scheme.toLowerCase() !== 'bearer')
    parts.push(`(${denial.scheme})`);
  return parts.join(' ');
}

function denialOutcome(answer: Extract<Answer, { kind: 'deny' }>): DenialOutcome {
  const challenges: Challenge[] = [];
  for (const [name, value] of answer.headers) {
    if (name !== 'www-authenticate') continue;
    const parsed = parseWwwAuthenticate(value);
    // Our own answers always parse; a failure here would be a bug in the answer table, so say so loudly.
    if (!parsed.ok) throw new Error(`the answer's WWW-Authenticate does not parse: ${parsed.error.message}`);
    challenges.push(...parsed.challenges);
  }
  const read = challenges.find((c) => c.params.has('error')) ?? challenges[0];
  // A DPoP challenge takes the parameters of a Bearer one (RFC 9449 section 7.1), read the same way.
  const challenge = read === undefined ? undefined : findBearerChallenge([{ ...read, scheme: 'Bearer' }]);
  const bodyError = (JSON.parse(answer.body) as { error?: unknown }).error;
  const error = challenge?.error ?? (typeof bodyError === 'string' ? bodyError : undefined);
  return {
    status: answer.status,
    ...(read === undefined ? {} : { scheme: read.scheme }),
    error,
    ...(challenge?.scope === undefined ? {} : { scope: challenge.scope.join(' ') }),
    ...(challenge?.acrValues === undefined ? {} : { acrValues: challenge.acrValues.join(' ') }),
    ...(challenge?.maxAge === undefined ? {} : { maxAge: challenge.maxAge }),
  };
}
