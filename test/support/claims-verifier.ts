import type { JWTPayload } from 'jose';
import { readTokenClaims } from '../../src/authn/read-token-claims.js';
import type { CredentialVerifier } from '../../src/authz/credentials.js';
import type { TokenVerification } from '../../src/authz/token-verification.js';
import type { CompiledPolicy } from '../../src/policy/compiled-policy.js';

/**
 * A verifier for unit tests of the decision pipeline: each token is a name in `tokens`, whose claims are
 * taken as signed and read by the real `readTokenClaims` under the issuer its `iss` names (subject, scopes,
 * audiences and the claims services pass on in headers). An unknown name is a bad signature, an unknown
 * `iss` an unknown issuer, as the real verifier would answer. Nothing is fetched; nothing is signed.
 */
export function claimsVerifier(
  policy: CompiledPolicy,
  tokens: Readonly<Record<string, JWTPayload>>,
): CredentialVerifier<string> {
  return {
    verify: (token): TokenVerification => {
      const claims = Object.hasOwn(tokens, token) ? tokens[token] : undefined;
      if (claims === undefined) {
        return {
          kind: 'invalid',
          reason: 'token_signature_invalid',
          description: 'the token signature is invalid',
        };
      }
      const issuer = claims.iss === undefined ? undefined : policy.issuers.get(claims.iss);
      if (issuer === undefined) {
        return {
          kind: 'invalid',
          reason: 'token_issuer_unknown',
          description: 'the token was not issued by a trusted issuer',
        };
      }
      return readTokenClaims(claims, issuer);
    },
  };
}
