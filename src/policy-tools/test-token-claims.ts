import { nearestName } from '../args/nearest-name.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';

/**
 * Claims a test token may carry though no claim setting of the policy reads them: the registered claims
 * of RFC 7519 section 4.1 and `cnf` (RFC 7800: the key or certificate the token is bound to, RFC 9449
 * section 6, RFC 8705 section 3.1), which the verifier (not the policy's claim settings) deals with, and two that
 * name the client in access tokens (`client_id`, RFC 9068 section 2.2; `azp`, OpenID Connect Core
 * section 2). `scope`, `acr`, `amr` and `auth_time` are deliberately not here: the policy decides by
 * them, so a test token that carries one no issuer reads is testing something the server ignores.
 */
export const REGISTERED_CLAIMS: readonly string[] = Object.freeze([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'cnf',
  'client_id',
  'azp',
]);

/** A claim of a test token that nothing reads (`claim_unread`), with the closest claim that is read. */
export interface TestWarning {
  readonly code: 'claim_unread';
  readonly claim: string;
  /** The nearest claim that is read or registered, when one is close enough to be a likely typo. */
  readonly suggestion?: string;
  /** One line, e.g. `claim "scopes" is read by no issuer of the policy; did you mean "scope"?`. */
  readonly message: string;
}

/**
 * The claims some issuer of the policy reads: its scope claims, `acr`, `amr` and `auth_time` names
 * (`IssuerPolicy.claims`), and the claims services pass on as headers (`IssuerPolicy.headerClaims`).
 */
export function claimsReadBy(policy: CompiledPolicy): ReadonlySet<string> {
  const read = new Set<string>();
  for (const issuer of policy.issuers.values()) {
    const { scopes, acr, amr, authTime } = issuer.claims;
    for (const name of [...scopes, acr, amr, authTime, ...issuer.headerClaims]) read.add(name);
  }
  return read;
}

/**
 * Warns about each claim of a test token that no issuer reads and that is not registered
 * (`REGISTERED_CLAIMS`): a misspelt `scopes:` for `scope:` would otherwise make a case that expects a
 * denial pass for the wrong reason. Pure.
 *
 * @param read the claims the policy reads (`claimsReadBy`), computed once per policy.
 */
export function unreadClaimWarnings(
  claims: Readonly<Record<string, unknown>>,
  read: ReadonlySet<string>,
): TestWarning[] {
  const known = [...read, ...REGISTERED_CLAIMS];
  const warnings: TestWarning[] = [];
  for (const claim of Object.keys(claims)) {
    if (read.has(claim) || REGISTERED_CLAIMS.includes(claim)) continue;
    const suggestion = nearestName(claim, known);
    const hint = suggestion === undefined ? '' : `; did you mean "${suggestion}"?`;
    warnings.push({
      code: 'claim_unread',
      claim,
      ...(suggestion === undefined ? {} : { suggestion }),
      message: `claim ${JSON.stringify(claim)} is read by no issuer of the policy${hint}`,
    });
  }
  return warnings;
}
