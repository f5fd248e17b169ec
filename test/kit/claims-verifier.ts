import type { JWTPayload } from 'jose';
import { readTokenClaims } from '../../src/authn/read-token-claims.js';
import type { CredentialVerifier } from '../../src/authz/credentials.js';
import type { DpopProofCode } from '../../src/authz/decision.js';
import type {
  CertificateCheck,
  DpopProofCheck,
  ProofRequest,
  ReplayClaim,
} from '../../src/authz/possession-proof.js';
import type { TokenVerification } from '../../src/authz/token-verification.js';
import type { CompiledPolicy } from '../../src/policy/compiled-policy.js';

/**
 * A verifier for unit tests of the decision pipeline: each token is a name in `tokens`, whose claims are
 * taken as signed and read by the real `readTokenClaims` under the issuer its `iss` names (subject, scopes,
 * audiences and the claims services pass on in headers). An unknown name is a bad signature, an unknown
 * `iss` an unknown issuer, as the real verifier would answer. Nothing is fetched; nothing is signed.
 * `claimed` lists, in order, the thumbprints of the proofs whose `jti` the core claimed.
 */
export function claimsVerifier(
  policy: CompiledPolicy,
  tokens: Readonly<Record<string, JWTPayload>>,
): CredentialVerifier<string> & { readonly claimed: readonly string[] } {
  const claimed: string[] = [];
  return {
    claimed,
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
    prove: (_token, request) => ({
      dpop: testDpopProof(request, claimed),
      certificate: testCertificate(request),
    }),
  };
}

/** What claiming a test proof's `jti` finds: `thumbprint:T` is fresh, `thumbprint:T;replayed` a replay... */
const CLAIMS: Readonly<Record<string, ReplayClaim>> = {
  fresh: { kind: 'fresh' },
  replayed: { kind: 'replayed' },
  over_quota: { kind: 'over_quota', share: 'key', retryAfterSeconds: 42 },
  full: { kind: 'full' },
};

/**
 * Proofs as the unit tests of the pipeline present them, no cryptography involved: a `DPoP` header value
 * `thumbprint:T` is a valid proof from the key with thumbprint T (`thumbprint:T;replayed`, `;over_quota`,
 * `;full`: one whose claim finds that), `invalid:CODE` a proof refused with CODE; a client certificate
 * `thumbprint:T` is a certificate with thumbprint T, anything else unreadable.
 */
function testDpopProof(request: ProofRequest, claimed: string[]): DpopProofCheck {
  const [proof] = request.dpopProofs;
  if (proof === undefined) return { kind: 'none' };
  if (proof.startsWith('thumbprint:')) {
    const [thumbprint = '', outcome = 'fresh'] = proof.slice('thumbprint:'.length).split(';');
    return {
      kind: 'valid',
      thumbprint,
      claim: () => {
        claimed.push(thumbprint);
        return CLAIMS[outcome] ?? CLAIMS['fresh']!;
      },
    };
  }
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
