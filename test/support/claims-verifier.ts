import type { JWTPayload } from 'jose';
import { readTokenClaims } from '../../src/authn/read-token-claims.js';
import type { CredentialVerifier } from '../../src/authz/credentials.js';
import type { DpopProofCode } from '../../src/authz/decision.js';
import type { CertificateCheck, DpopProofCheck, ProofRequest } from '../../src/authz/possession-proof.js';
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
    prove: (_token, request) => ({ dpop: testDpopProof(request), certificate: testCertificate(request) }),
  };
}

/**
 * Proofs as the unit tests of the pipeline present them, no cryptography involved: a `DPoP` header value
 * `thumbprint:T` is a valid proof from the key with thumbprint T, `invalid:CODE` a proof refused with CODE;
 * a client certificate `thumbprint:T` is a certificate with thumbprint T, anything else unreadable.
 */
function testDpopProof(request: ProofRequest): DpopProofCheck {
  const [proof] = request.dpopProofs;
  if (proof === undefined) return { kind: 'none' };
  if (proof.startsWith('thumbprint:'))
    return { kind: 'valid', thumbprint: proof.slice('thumbprint:'.length) };
  const code = proof.startsWith('invalid:') ? proof.slice('invalid:'.length) : 'dpop_proof_malformed';
  return {
    kind: 'invalid',
    code: code as DpopProofCode,
    description: `test proof refused: ${code}`,
    ...(code.startsWith('dpop_nonce') ? { nonce: 'test-nonce' } : {}),
  };
}

function testCertificate(request: ProofRequest): CertificateCheck {
  const certificate = request.clientCertificate;
  if (certificate === undefined) return { kind: 'none' };
  return certificate.startsWith('thumbprint:')
    ? { kind: 'present', thumbprint: certificate.slice('thumbprint:'.length) }
    : { kind: 'invalid', description: 'the client certificate cannot be read' };
}
