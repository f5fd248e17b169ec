import type { AuthScheme } from './auth-scheme.js';
import type { BindingCode, DpopProofCode } from './decision.js';
import type { PossessionProofs, ReplayClaim } from './possession-proof.js';
import type { VerifiedToken } from './token-verification.js';
import type { CompiledRoute, SenderConstraint } from '../policy/compiled-policy.js';

/** Why a verified token may not be used as it was presented, as a denial code and a description. */
export interface BindingRefusal {
  readonly code: BindingCode | DpopProofCode | 'scheme_not_accepted';
  /** Safe to send to the client: names no claim value, key or token. */
  readonly description: string;
  /** For the nonce codes: the nonce for `DPoP-Nonce`. */
  readonly nonce?: string;
  /** For `dpop_proof_quota_exceeded`: seconds until the client may try again. */
  readonly retryAfterSeconds?: number;
}

/** What must be proved for a token whose use passed `bindingPrecheck`. */
export interface ProofNeeds {
  /** A DPoP proof from the key `cnf.jkt` names. */
  readonly dpop: boolean;
  /** The client certificate `cnf["x5t#S256"]` names. */
  readonly certificate: boolean;
}

const OFF: SenderConstraint = Object.freeze({ dpop: 'off', mtls: 'off' });

/**
 * The sender constraint in force on a route for a token of this issuer (route over service over issuer,
 * resolved at load). An issuer the service does not trust never gets here; `off` all the same if it did.
 */
export function senderConstraintFor(route: CompiledRoute, issuer: string): SenderConstraint {
  return route.senderConstraints.get(issuer) ?? OFF;
}

/**
 * Step one of the binding check, pure: whether the token may be used as presented at all, before any proof
 * is looked at, and if so what must be proved. Every binding the token carries is checked whatever the
 * route says (RFC 9449 section 7.2: a bound token is never a bearer token).
 */
export function bindingPrecheck(
  constraint: SenderConstraint,
  scheme: AuthScheme,
  token: VerifiedToken,
): BindingRefusal | ProofNeeds {
  const { jkt, x5tS256 } = token.confirmation;
  if (scheme === 'DPoP' && constraint.dpop === 'off') {
    return { code: 'scheme_not_accepted', description: 'this API does not accept the DPoP scheme here' };
  }
  if (jkt !== undefined && constraint.dpop === 'off') {
    return {
      code: 'binding_not_accepted',
      description: 'the token is bound to a DPoP key, which this API does not accept here',
    };
  }
  if (x5tS256 !== undefined && constraint.mtls === 'off') {
    return {
      code: 'binding_not_accepted',
      description: 'the token is bound to a client certificate, which this API does not accept here',
    };
  }
  if (jkt !== undefined && scheme === 'Bearer') {
    return {
      code: 'binding_dpop_scheme_required',
      description: 'the token is bound to a DPoP key: send it with the DPoP scheme and a DPoP proof',
    };
  }
  if (scheme === 'DPoP' && jkt === undefined) {
    return { code: 'binding_token_not_dpop_bound', description: 'the token is not bound to a DPoP key' };
  }
  const dpopRequired = constraint.dpop === 'required';
  const mtlsRequired = constraint.mtls === 'required';
  // Either required binding is enough when both are required (FAPI 2.0: DPoP or mTLS).
  const satisfied = (dpopRequired && jkt !== undefined) || (mtlsRequired && x5tS256 !== undefined);
  if ((dpopRequired || mtlsRequired) && !satisfied) {
    const kind =
      dpopRequired && mtlsRequired
        ? 'a DPoP-bound or certificate-bound token'
        : dpopRequired
          ? 'a DPoP-bound token'
          : 'a certificate-bound token';
    return { code: 'binding_required', description: `this API requires ${kind} here` };
  }
  return { dpop: jkt !== undefined, certificate: x5tS256 !== undefined };
}

/**
 * Step two, pure: given what the verifier established about the proofs, does the token's binding hold?
 * The proof key's RFC 7638 thumbprint must equal `cnf.jkt` (RFC 9449 section 6.1), the certificate's SHA-256
 * thumbprint `cnf["x5t#S256"]` (RFC 8705 section 3.1). Thumbprints are of public keys and certificates:
 * nothing secret is compared.
 */
export function bindingOutcome(
  needs: ProofNeeds,
  token: VerifiedToken,
  proofs: PossessionProofs,
): BindingRefusal | undefined {
  if (needs.dpop) {
    const { dpop } = proofs;
    if (dpop.kind === 'none') return { code: 'dpop_proof_missing', description: 'a DPoP proof is required' };
    if (dpop.kind === 'invalid') {
      return {
        code: dpop.code,
        description: dpop.description,
        ...(dpop.nonce === undefined ? {} : { nonce: dpop.nonce }),
      };
    }
    if (dpop.thumbprint !== token.confirmation.jkt) {
      return {
        code: 'binding_dpop_key_mismatch',
        description: 'the DPoP proof is not signed with the key the token is bound to',
      };
    }
  }
  if (needs.certificate) {
    const { certificate } = proofs;
    if (certificate.kind === 'none') {
      return {
        code: 'binding_certificate_missing',
        description: 'the token is bound to a client certificate, and the connection presented none',
      };
    }
    if (certificate.kind === 'invalid') {
      return { code: 'binding_certificate_invalid', description: certificate.description };
    }
    if (certificate.thumbprint !== token.confirmation.x5tS256) {
      return {
        code: 'binding_certificate_mismatch',
        description: 'the client certificate is not the one the token is bound to',
      };
    }
  }
  return undefined;
}

/**
 * Step three, pure: what remembering the proof's `jti` found, once the binding held (RFC 9449 section 11.1).
 * A replay is an invalid proof; a client over its share of the replay store is told to slow down; a store
 * full for everyone, or a shared store that did not answer, is refused rather than risk accepting a replay.
 */
export function replayOutcome(claim: ReplayClaim): BindingRefusal | undefined {
  switch (claim.kind) {
    case 'fresh':
      return undefined;
    case 'replayed':
      return { code: 'dpop_proof_replayed', description: 'the DPoP proof has been used before' };
    case 'over_quota':
      return {
        code: 'dpop_proof_quota_exceeded',
        description: `too many DPoP proofs of this ${claim.share === 'key' ? 'key' : 'user'} are still within their replay window: retry later`,
        retryAfterSeconds: claim.retryAfterSeconds,
      };
    case 'full':
      return {
        code: 'dpop_replay_cache_full',
        description: 'DPoP proofs cannot be checked for replay right now',
      };
    case 'unavailable':
      return {
        code: 'dpop_replay_store_unavailable',
        description: 'DPoP proofs cannot be checked for replay right now',
      };
  }
}
