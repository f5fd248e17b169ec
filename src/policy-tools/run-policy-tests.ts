import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { describeDenial, describeOutcome, outcomeOf, type Outcome } from './answer-outcome.js';
import { authorize } from '../authz/authorize.js';
import type { AuthScheme, Credentials } from '../authz/credentials.js';
import {
  GIVEN_CLIENT_CERTIFICATE,
  GIVEN_DPOP_PROOF,
  givenClaimsVerifier,
  issuerForGivenClaims,
  type GivenClaims,
} from './given-claims.js';
import type { CaseToken, Expectation, PolicyTestCase } from './policy-test-file.js';
import { claimsReadBy, unreadClaimWarnings, type TestWarning } from './test-token-claims.js';

/** The result of one case. */
export interface PolicyTestResult {
  readonly testCase: PolicyTestCase;
  readonly passed: boolean;
  /** The expectation in one line, e.g. `403 insufficient_scope scope="transfer:funds"`. */
  readonly expected: string;
  /** What the policy did, in the same terms. */
  readonly actual: string;
  readonly outcome: Outcome;
  /** Claims of the case's token that nothing reads (a typo?); they do not fail the case by themselves. */
  readonly warnings: readonly TestWarning[];
}

/**
 * Runs test cases against a policy through the server's decision core, checking each expectation against
 * the answer a client would see (status, and the error and parameters of its `WWW-Authenticate`). Token
 * claims are taken as verified (`givenClaimsVerifier`); those no issuer reads are warned about
 * (`unreadClaimWarnings`). Pure (asynchronous only because `authorize` is).
 *
 * @param nowMs the clock, in milliseconds since the epoch: for `auth_time_ago` and `max_age`.
 */
export async function runPolicyTests(
  policy: CompiledPolicy,
  cases: readonly PolicyTestCase[],
  nowMs: number,
): Promise<PolicyTestResult[]> {
  const verifier = givenClaimsVerifier(policy);
  const read = claimsReadBy(policy);
  const results: PolicyTestResult[] = [];
  for (const testCase of cases) {
    const { method, target, host, serviceName, scheme, dpopProof, clientCertificate } = testCase.request;
    const credentials = credentialsFor(policy, testCase.token, scheme ?? 'Bearer', nowMs);
    const facts = {
      method,
      target,
      host,
      serviceName,
      credentials,
      // Said, not shown: the verifier takes them as valid and from the token's key (`givenProofs`).
      ...(dpopProof === true ? { dpopProofs: [GIVEN_DPOP_PROOF] } : {}),
      ...(clientCertificate === true ? { clientCertificate: GIVEN_CLIENT_CERTIFICATE } : {}),
    };
    const outcome = outcomeOf(await authorize(policy, facts, verifier, () => nowMs));
    results.push({
      testCase,
      passed: meets(outcome, testCase.expect),
      expected: describeExpectation(testCase.expect),
      actual: describeOutcome(outcome),
      outcome,
      warnings: testCase.token.kind === 'claims' ? unreadClaimWarnings(testCase.token.claims, read) : [],
    });
  }
  return results;
}

function credentialsFor(
  policy: CompiledPolicy,
  token: CaseToken,
  scheme: AuthScheme,
  nowMs: number,
): Credentials<GivenClaims> {
  if (token.kind === 'none') return { kind: 'none' };
  let claims = token.claims;
  if (token.authTimeAgoSeconds !== undefined) {
    // auth_time goes in the claim the issuer is configured to use for it.
    const name = issuerForGivenClaims(policy, claims)?.claims.authTime ?? 'auth_time';
    claims = { ...claims, [name]: Math.floor(nowMs / 1000) - token.authTimeAgoSeconds };
  }
  return { kind: 'presented', scheme, value: claims };
}

/** Whether the outcome is the one expected; unnamed fields of a denial are not checked. */
function meets(outcome: Outcome, expect: Expectation): boolean {
  if (expect.kind === 'allow') return outcome.kind === 'allow';
  if (outcome.kind !== (expect.wouldDeny ? 'would_deny' : 'deny')) return false;
  const { denial } = outcome as Exclude<Outcome, { kind: 'allow' }>;
  return (
    denial.status === expect.status &&
    (expect.error === undefined || denial.error === expect.error) &&
    (expect.scope === undefined || sameItems(denial.scope, expect.scope)) &&
    (expect.acrValues === undefined || sameItems(denial.acrValues, expect.acrValues)) &&
    (expect.maxAge === undefined || denial.maxAge === expect.maxAge) &&
    (expect.scheme === undefined || denial.scheme?.toLowerCase() === expect.scheme.toLowerCase())
  );
}

/** A space-separated challenge value against expected items, order aside. */
function sameItems(actual: string | undefined, expected: readonly string[]): boolean {
  if (actual === undefined) return false;
  const items = new Set(actual.split(' '));
  return items.size === new Set(expected).size && expected.every((item) => items.has(item));
}

function describeExpectation(expect: Expectation): string {
  if (expect.kind === 'allow') return 'allow';
  const denial = describeDenial({
    status: expect.status,
    ...(expect.error === undefined ? {} : { error: expect.error }),
    ...(expect.scope === undefined ? {} : { scope: expect.scope.join(' ') }),
    ...(expect.acrValues === undefined ? {} : { acrValues: expect.acrValues.join(' ') }),
    ...(expect.maxAge === undefined ? {} : { maxAge: expect.maxAge }),
    ...(expect.scheme === undefined ? {} : { scheme: expect.scheme }),
  });
  return expect.wouldDeny ? `allow (report-only: would deny ${denial})` : denial;
}
