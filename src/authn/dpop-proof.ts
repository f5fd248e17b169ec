import { createHash } from 'node:crypto';
import type { errors } from 'jose';
import { decodeProtectedHeader, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { DpopProofCode } from '../authz/decision.js';
import type { DpopProofCheck } from '../authz/possession-proof.js';
import type { DpopProofPolicy, ReplayLimits } from '../policy/compiled-policy.js';
import type { DpopNonces } from './dpop-nonces.js';
import type { DpopProofKeys } from './dpop-proof-keys.js';
import type { ReplayStore } from './dpop-replay-store.js';
import { normalisedHttpUri } from './http-uri.js';

/** What checking one proof needs besides the proof. */
export interface DpopProofContext {
  /** Every value the request carried for the `DPoP` header. */
  readonly proofs: readonly string[];
  /** The access token presented with it, for `ath`. */
  readonly accessToken: string;
  readonly method: string;
  /** The URIs the proof's `htu` may name (the service's public origins plus the path). */
  readonly uris: readonly string[];
  /** The service's name, for its nonces. */
  readonly service: string;
  readonly policy: DpopProofPolicy;
  /** Where a proof's `jti` is claimed, once the core has found its key to be the token's. */
  readonly replay: {
    readonly store: ReplayStore;
    readonly limits: ReplayLimits;
    /** Whose token it is (issuer and `sub`), for the user's share of the store; undefined without `sub`. */
    readonly subject: string | undefined;
  };
  readonly nonces: DpopNonces;
  /** The proof keys imported so far. */
  readonly proofKeys: DpopProofKeys;
  /** The largest RSA modulus accepted for a proof key, in bits (`max_rsa_key_bits`). */
  readonly maxRsaKeyBits: number;
  /** Milliseconds since the epoch. */
  readonly nowMs: number;
}

/** A proof longer than this is refused unread, in bytes (a P-521 or RSA-4096 proof is well under 4 KiB). */
export const MAX_DPOP_PROOF_BYTES = 8192;
/** The longest `jti` remembered, in characters (a UUID is 36). */
const MAX_JTI_CHARS = 256;
/** JWK members that only a private or symmetric key has (RFC 7517 section 9.3, RFC 7518 section 6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const PUBLIC_KEY_TYPES: ReadonlySet<unknown> = new Set(['EC', 'RSA', 'OKP']);

const invalid = (code: DpopProofCode, description: string): DpopProofCheck => ({
  kind: 'invalid',
  code,
  description,
});

/**
 * Checks the DPoP proof of a request to a protected resource (RFC 9449 section 4.3, and section 7.1 for
 * `ath`), every check but the key binding, which the core compares with the token's `cnf.jkt` using the
 * thumbprint returned. Never throws for anything about the proof; JWS parsing, key import, signature and
 * thumbprint are jose's.
 *
 * The `jti` is not remembered here: the core claims it (`claim` of the valid answer) once the token's binding
 * holds, so a refused proof, or a valid proof from a key the token is not bound to, uses up nothing.
 */
export async function checkDpopProof(context: DpopProofContext): Promise<DpopProofCheck> {
  const { proofs, policy, nowMs } = context;
  if (proofs.length === 0) return { kind: 'none' };
  // Section 4.3 check 1: not more than one DPoP header. Envoy joins repeated headers with commas, which no
  // compact JWS holds.
  if (proofs.length > 1 || (proofs[0] ?? '').includes(',')) {
    return invalid('dpop_proof_multiple', 'the request carries more than one DPoP header');
  }
  const proof = (proofs[0] ?? '').trim();
  if (proof.length > MAX_DPOP_PROOF_BYTES)
    return invalid('dpop_proof_malformed', 'the DPoP proof is too large');
  if (proof.split('.').length !== 3) {
    return invalid('dpop_proof_malformed', 'the DPoP proof is not a compact JWS');
  }
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    return invalid('dpop_proof_malformed', 'the DPoP proof is not a compact JWS');
  }
  // Check 4: explicitly typed. Media types compare case-insensitively (RFC 2045 section 5.1), and RFC 7515
  // section 4.1.9 has `application/dpop+jwt` name the same type.
  if (
    typeof header.typ !== 'string' ||
    header.typ.toLowerCase().replace(/^application\//, '') !== 'dpop+jwt'
  ) {
    return invalid('dpop_proof_type_invalid', 'the DPoP proof is not of type dpop+jwt');
  }
  // No JWS extension is understood here, so a proof that marks one critical is refused (RFC 7515 4.1.11).
  if (header.crit !== undefined) {
    return invalid(
      'dpop_proof_malformed',
      'the DPoP proof names critical extensions this service does not support',
    );
  }
  // Check 5: an asymmetric algorithm this service accepts; `none` and MACs are never in the list.
  if (typeof header.alg !== 'string' || !policy.algorithms.includes(header.alg)) {
    return invalid(
      'dpop_proof_algorithm_not_allowed',
      'the DPoP proof is signed with an algorithm not accepted',
    );
  }
  // Check 7: a public key, never private or symmetric material.
  const jwk = header.jwk as unknown;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    return invalid('dpop_proof_key_invalid', 'the DPoP proof has no jwk header');
  }
  const members = jwk as Record<string, unknown>;
  if (!PUBLIC_KEY_TYPES.has(members['kty']) || PRIVATE_MEMBERS.some((name) => Object.hasOwn(members, name))) {
    return invalid('dpop_proof_key_invalid', 'the jwk of the DPoP proof is not a public key');
  }

  // Check 6: the signature, with the key in the header: its size bounded before it is imported, and
  // kept for the next proof only once this signature has verified (`dpop-proof-keys.ts`).
  const resolved = await context.proofKeys.resolve(members, header.alg, context.maxRsaKeyBits);
  if (resolved.kind === 'unusable') return invalid('dpop_proof_key_invalid', resolved.description);
  const { thumbprint } = resolved;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(proof, resolved.key, {
      algorithms: [...policy.algorithms],
      typ: 'dpop+jwt',
      currentDate: new Date(nowMs),
      clockTolerance: policy.clockToleranceSeconds,
    }));
  } catch (error) {
    return refusalFor(error);
  }
  resolved.keep();

  // Check 3: the claims the proof must carry, with their types.
  const { jti, htm, htu, iat, ath, nonce } = payload as Record<string, unknown>;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_CHARS) {
    return invalid('dpop_proof_claims_invalid', 'the DPoP proof has no usable jti claim');
  }
  if (typeof htm !== 'string' || typeof htu !== 'string') {
    return invalid('dpop_proof_claims_invalid', 'the DPoP proof lacks htm or htu');
  }
  if (typeof iat !== 'number' || !Number.isFinite(iat)) {
    return invalid('dpop_proof_claims_invalid', 'the DPoP proof has no usable iat claim');
  }
  if (typeof ath !== 'string') {
    return invalid('dpop_proof_claims_invalid', 'the DPoP proof has no ath claim for the access token');
  }
  // Check 8: the method, compared exactly (methods are case-sensitive, RFC 9110 section 9.1).
  if (htm !== context.method) {
    return invalid('dpop_proof_method_mismatch', 'the DPoP proof is for another HTTP method');
  }
  // Check 9: the URI, without query and fragment, both sides normalised; the origin is the service's own.
  const claimed = normalisedHttpUri(htu);
  if (claimed === undefined || !context.uris.some((uri) => normalisedHttpUri(uri) === claimed)) {
    return invalid('dpop_proof_uri_mismatch', 'the DPoP proof is for another URI');
  }
  // Check 11: created within the window this service accepts.
  const ageSeconds = nowMs / 1000 - iat;
  if (ageSeconds > policy.maxAgeSeconds) return invalid('dpop_proof_expired', 'the DPoP proof is too old');
  if (-ageSeconds > policy.clockToleranceSeconds) {
    return invalid('dpop_proof_issued_in_future', 'the DPoP proof was issued in the future');
  }
  // Check 12 / section 7.1: bound to this access token.
  if (ath !== createHash('sha256').update(context.accessToken, 'ascii').digest('base64url')) {
    return invalid('dpop_proof_token_hash_mismatch', 'the DPoP proof is for another access token');
  }
  // Check 10: a nonce this service issued, when it requires one (section 9).
  if (policy.nonce === 'required') {
    const { nonces, service } = context;
    const fresh = (code: DpopProofCode, description: string): DpopProofCheck => ({
      kind: 'invalid',
      code,
      description,
      nonce: nonces.issue(service, nowMs),
    });
    if (nonce === undefined) return fresh('dpop_nonce_missing', 'the DPoP proof must carry a server nonce');
    if (typeof nonce !== 'string' || !nonces.accepts(nonce, service, nowMs, policy.nonceLifetimeSeconds)) {
      return fresh('dpop_nonce_invalid', 'the DPoP proof carries a nonce that is not valid (any more)');
    }
  }

  // Section 11.1: a jti seen within the window is a replay. The core claims it once the proof's key is
  // found to be the token's (keyed by the key's thumbprint, so one client's jti never blocks another's),
  // for as long as a proof with this iat stays acceptable.
  const { replay } = context;
  const entry = {
    keyThumbprint: thumbprint,
    jti,
    ...(replay.subject === undefined ? {} : { subject: replay.subject }),
    issuedAtMs: iat * 1000,
    acceptableUntilMs: (iat + policy.maxAgeSeconds) * 1000,
  };
  return { kind: 'valid', thumbprint, claim: () => replay.store.claim(entry, nowMs, replay.limits) };
}

/** Maps jose's errors (stable codes) while verifying a proof to why it is refused. */
function refusalFor(error: unknown): DpopProofCheck {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('dpop_proof_signature_invalid', 'the DPoP proof signature is invalid');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return invalid(
        'dpop_proof_algorithm_not_allowed',
        'the DPoP proof is signed with an algorithm not accepted',
      );
    case 'ERR_JWT_EXPIRED':
      return invalid('dpop_proof_expired', 'the DPoP proof has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (error as errors.JWTClaimValidationFailed).claim;
      if (claim === 'typ')
        return invalid('dpop_proof_type_invalid', 'the DPoP proof is not of type dpop+jwt');
      return invalid('dpop_proof_claims_invalid', `the ${String(claim)} claim of the DPoP proof is invalid`);
    }
    case 'ERR_JWK_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalid('dpop_proof_key_invalid', 'the jwk of the DPoP proof is not a usable public key');
    case 'ERR_JWS_INVALID':
      // EmbeddedJWK refuses a jwk that is not a public key with JWSInvalid too.
      return /jwk/i.test((error as Error).message)
        ? invalid('dpop_proof_key_invalid', 'the jwk of the DPoP proof is not a usable public key')
        : invalid('dpop_proof_malformed', 'the DPoP proof is not a well-formed JWS');
    default:
      // WebCrypto refusing a key (a curve, size or key_ops it does not take) is a TypeError or a
      // DOMException (DataError, SyntaxError, NotSupportedError).
      if (error instanceof TypeError || error instanceof DOMException) {
        return invalid('dpop_proof_key_invalid', 'the jwk of the DPoP proof is not a usable public key');
      }
      return invalid('dpop_proof_malformed', 'the DPoP proof is not a well-formed JWT');
  }
}
