import type { JWTPayload } from 'jose';
import { readTokenClaims } from '../authn/read-token-claims.js';
import type { CredentialVerifier } from '../authz/credentials.js';
import type { PossessionProofs, ProofRequest, ReplayClaim } from '../authz/possession-proof.js';
import type { TokenVerification } from '../authz/token-verification.js';
import type { CompiledPolicy, IssuerPolicy } from '../policy/compiled-policy.js';

/**
 * What the service would make of a token carrying these claims, had its signature, `exp`, `nbf`, `aud`,
 * `iat` and lifetime (`max_token_lifetime`) checked out: the claims are taken as verified claims of the
 * issuer their `iss` names (the policy's first issuer when there is no `iss`) and read with that issuer's
 * claim names, exactly as a verified token's are. An `iss` the policy does not trust is refused as a real
 * token would be. Pure. None of the time checks apply: given claims are a hypothesis about a token, not a
 * token, and the tools that take them ask about the policy's routes.
 *
 * For `authz explain --claims`, `authz test` and `authz diff`, which reason about policies, not tokens.
 */
export function verificationForGivenClaims(
  policy: CompiledPolicy,
  claims: Readonly<Record<string, unknown>>,
): TokenVerification {
  const issuer = issuerForGivenClaims(policy, claims);
  if (issuer === undefined) {
    return {
      kind: 'invalid',
      reason: 'token_issuer_unknown',
      description: 'the token was not issued by a trusted issuer',
    };
  }
  const verification = readTokenClaims(claims as JWTPayload, issuer);
  // Given claims skip aud unless they set one: the token is then meant for every audience of its issuer.
  if (verification.kind !== 'verified' || Object.hasOwn(claims, 'aud')) return verification;
  return { kind: 'verified', token: { ...verification.token, audiences: new Set(issuer.audiences) } };
}

/** The issuer given claims are read as coming from: the one `iss` names, else the policy's first. */
export function issuerForGivenClaims(
  policy: CompiledPolicy,
  claims: Readonly<Record<string, unknown>>,
): IssuerPolicy | undefined {
  if (!Object.hasOwn(claims, 'iss')) return policy.issuers.values().next().value;
  const iss = claims['iss'];
  return typeof iss === 'string' ? policy.issuers.get(iss) : undefined;
}

/** Claims presented to `authorize()` by the policy tools in place of a token. */
export type GivenClaims = Readonly<Record<string, unknown>>;

/**
 * The policy tools' verifier: presented claims are taken as verified (see `verificationForGivenClaims`).
 * For `authz test` and `authz explain --claims`.
 */
export function givenClaimsVerifier(policy: CompiledPolicy): CredentialVerifier<GivenClaims> {
  return { verify: (claims) => verificationForGivenClaims(policy, claims), prove: givenProofs };
}

/**
 * A verifier for credentials whose verification was settled before the request was authorised: the
 * token `authz explain --token` verified with the policy's keys (keeping what it learnt on the way), or
 * the token profiles of `authz diff`, which are verifications by construction.
 */
export const SETTLED_VERIFICATION: CredentialVerifier<TokenVerification> = Object.freeze({
  verify: (verification: TokenVerification) => verification,
  prove: (_verification: TokenVerification, request: ProofRequest) => givenProofs(undefined, request),
});

/**
 * What the policy tools put in `RequestFacts.dpopProofs` for a request said to carry a DPoP proof (`authz
 * explain --dpop-proof`, a test's `dpop_proof: true`): not a proof, a statement that the request carries a
 * valid one from the key the token is bound to. Only `givenProofs` reads it.
 */
export const GIVEN_DPOP_PROOF = 'given: a valid DPoP proof from the key the token is bound to';

/** `RequestFacts.clientCertificate` for a connection said to present the token's certificate. */
export const GIVEN_CLIENT_CERTIFICATE = 'given: the client certificate the token is bound to';

/**
 * A thumbprint no key or certificate has (base64url has no `:`), for a proof said to be presented with a
 * token that names no key: the core then refuses the binding as it would a proof from another key.
 */
const NO_THUMBPRINT = 'given:no-key';

/** A given proof is a statement about one request: never seen before. */
const FRESH: ReplayClaim = Object.freeze({ kind: 'fresh' });

/**
 * The proofs of a request the policy tools were told about, as the server's verifier would find them: a
 * DPoP proof said to be carried is valid and from the key `cnf.jkt` names (RFC 9449 section 4.3 is the
 * server's to check, with its own tests); a certificate said to be presented is the one `cnf["x5t#S256"]`
 * names (RFC 8705 section 3). What was not said to be presented is absent. Pure.
 */
export function givenProofs(_presented: unknown, request: ProofRequest): PossessionProofs {
  const { jkt, x5tS256 } = request.token.confirmation;
  return {
    dpop:
      request.dpopProofs.length > 0
        ? { kind: 'valid', thumbprint: jkt ?? NO_THUMBPRINT, claim: () => FRESH }
        : { kind: 'none' },
    certificate:
      request.clientCertificate === undefined
        ? { kind: 'none' }
        : { kind: 'present', thumbprint: x5tS256 ?? NO_THUMBPRINT },
  };
}
