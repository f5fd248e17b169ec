import { describe, expect, it } from 'vitest';
import type { PossessionProofs, ReplayClaim } from '../../../src/authz/possession-proof.js';
import {
  bindingOutcome,
  bindingPrecheck,
  replayOutcome,
  type ProofNeeds,
} from '../../../src/authz/sender-constraint.js';
import type { Confirmation, VerifiedToken } from '../../../src/authz/token-verification.js';
import type { ConstraintSetting, SenderConstraint } from '../../../src/policy/compiled-policy.js';

const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const X5T = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';

function token(confirmation: Confirmation): VerifiedToken {
  return {
    issuer: 'https://idp.example/',
    subject: 'alice',
    scopes: new Set(['transfer:funds']),
    acr: undefined,
    amr: new Set(),
    authTime: undefined,
    audiences: new Set(['https://my-banking-api']),
    headerClaims: new Map(),
    confirmation,
  };
}

const constraint = (dpop: ConstraintSetting, mtls: ConstraintSetting = 'off'): SenderConstraint => ({
  dpop,
  mtls,
});
const UNBOUND = token({});
const DPOP_BOUND = token({ jkt: JKT });
const CERT_BOUND = token({ x5tS256: X5T });
const BOTH_BOUND = token({ jkt: JKT, x5tS256: X5T });

describe('bindingPrecheck: whether a verified token may be used as presented', () => {
  it.each<[string, SenderConstraint, 'Bearer' | 'DPoP', VerifiedToken, string]>([
    ['the DPoP scheme where DPoP is off', constraint('off'), 'DPoP', DPOP_BOUND, 'scheme_not_accepted'],
    ['a DPoP-bound token where DPoP is off', constraint('off'), 'Bearer', DPOP_BOUND, 'binding_not_accepted'],
    [
      'a certificate-bound token where mTLS is off',
      constraint('allowed'),
      'Bearer',
      CERT_BOUND,
      'binding_not_accepted',
    ],
    // RFC 9449 section 7.2: a DPoP-bound token is never a bearer token.
    [
      'a DPoP-bound token sent as Bearer',
      constraint('allowed'),
      'Bearer',
      DPOP_BOUND,
      'binding_dpop_scheme_required',
    ],
    [
      'a DPoP-bound token sent as Bearer, DPoP required',
      constraint('required'),
      'Bearer',
      DPOP_BOUND,
      'binding_dpop_scheme_required',
    ],
    [
      'the DPoP scheme with an unbound token',
      constraint('allowed'),
      'DPoP',
      UNBOUND,
      'binding_token_not_dpop_bound',
    ],
    [
      'the DPoP scheme with a certificate-bound token',
      constraint('allowed', 'allowed'),
      'DPoP',
      CERT_BOUND,
      'binding_token_not_dpop_bound',
    ],
    [
      'an unbound token where DPoP is required',
      constraint('required'),
      'Bearer',
      UNBOUND,
      'binding_required',
    ],
    [
      'an unbound token where mTLS is required',
      constraint('off', 'required'),
      'Bearer',
      UNBOUND,
      'binding_required',
    ],
    [
      'a certificate-bound token where DPoP is required',
      constraint('required', 'allowed'),
      'Bearer',
      CERT_BOUND,
      'binding_required',
    ],
    [
      'an unbound token where either is required',
      constraint('required', 'required'),
      'Bearer',
      UNBOUND,
      'binding_required',
    ],
  ])('refuses %s', (_case, given, scheme, verified, code) => {
    expect(bindingPrecheck(given, scheme, verified)).toMatchObject({ code });
  });

  it('names what is required in the description', () => {
    expect(bindingPrecheck(constraint('required'), 'Bearer', UNBOUND)).toMatchObject({
      description: 'this API requires a DPoP-bound token here',
    });
    expect(bindingPrecheck(constraint('off', 'required'), 'Bearer', UNBOUND)).toMatchObject({
      description: 'this API requires a certificate-bound token here',
    });
    expect(bindingPrecheck(constraint('required', 'required'), 'Bearer', UNBOUND)).toMatchObject({
      description: 'this API requires a DPoP-bound or certificate-bound token here',
    });
  });

  it.each<[string, SenderConstraint, 'Bearer' | 'DPoP', VerifiedToken, ProofNeeds]>([
    [
      'an unbound Bearer token where nothing is required',
      constraint('allowed', 'allowed'),
      'Bearer',
      UNBOUND,
      { dpop: false, certificate: false },
    ],
    [
      'an unbound Bearer token where all is off',
      constraint('off'),
      'Bearer',
      UNBOUND,
      { dpop: false, certificate: false },
    ],
    [
      'a DPoP-bound token with the DPoP scheme',
      constraint('allowed'),
      'DPoP',
      DPOP_BOUND,
      { dpop: true, certificate: false },
    ],
    [
      'a DPoP-bound token where DPoP is required',
      constraint('required'),
      'DPoP',
      DPOP_BOUND,
      { dpop: true, certificate: false },
    ],
    [
      'a certificate-bound token',
      constraint('off', 'allowed'),
      'Bearer',
      CERT_BOUND,
      { dpop: false, certificate: true },
    ],
    [
      'a certificate-bound token where mTLS is required',
      constraint('off', 'required'),
      'Bearer',
      CERT_BOUND,
      { dpop: false, certificate: true },
    ],
    // FAPI 2.0: DPoP or mTLS; every binding the token carries is still checked.
    [
      'a certificate-bound token where either is required',
      constraint('required', 'required'),
      'Bearer',
      CERT_BOUND,
      { dpop: false, certificate: true },
    ],
    [
      'a DPoP-bound token where either is required',
      constraint('required', 'required'),
      'DPoP',
      DPOP_BOUND,
      { dpop: true, certificate: false },
    ],
    [
      'a token bound both ways',
      constraint('allowed', 'allowed'),
      'DPoP',
      BOTH_BOUND,
      { dpop: true, certificate: true },
    ],
  ])('lets through %s, asking for its proofs', (_case, given, scheme, verified, needs) => {
    expect(bindingPrecheck(given, scheme, verified)).toEqual(needs);
  });
});

/** The claim of a proof no test here claims. */
const FRESH = (): ReplayClaim => ({ kind: 'fresh' });

describe('bindingOutcome: whether the proofs hold the binding', () => {
  const none: PossessionProofs = { dpop: { kind: 'none' }, certificate: { kind: 'none' } };
  const proofs = (overrides: Partial<PossessionProofs>): PossessionProofs => ({ ...none, ...overrides });
  const DPOP: ProofNeeds = { dpop: true, certificate: false };
  const CERT: ProofNeeds = { dpop: false, certificate: true };

  it('passes a proof from the key the token is bound to', () => {
    expect(
      bindingOutcome(DPOP, DPOP_BOUND, proofs({ dpop: { kind: 'valid', thumbprint: JKT, claim: FRESH } })),
    ).toBeUndefined();
  });

  it('refuses a missing proof, an invalid one (its own code) and one from another key', () => {
    expect(bindingOutcome(DPOP, DPOP_BOUND, none)).toMatchObject({ code: 'dpop_proof_missing' });
    expect(
      bindingOutcome(
        DPOP,
        DPOP_BOUND,
        proofs({ dpop: { kind: 'invalid', code: 'dpop_proof_replayed', description: 'used before' } }),
      ),
    ).toEqual({ code: 'dpop_proof_replayed', description: 'used before' });
    expect(
      bindingOutcome(DPOP, DPOP_BOUND, proofs({ dpop: { kind: 'valid', thumbprint: X5T, claim: FRESH } })),
    ).toMatchObject({ code: 'binding_dpop_key_mismatch' });
  });

  it('passes the nonce of a nonce refusal on', () => {
    expect(
      bindingOutcome(
        DPOP,
        DPOP_BOUND,
        proofs({ dpop: { kind: 'invalid', code: 'dpop_nonce_missing', description: 'nonce', nonce: 'n1' } }),
      ),
    ).toEqual({ code: 'dpop_nonce_missing', description: 'nonce', nonce: 'n1' });
  });

  it('checks the certificate: missing, unreadable, another one, the right one', () => {
    expect(bindingOutcome(CERT, CERT_BOUND, none)).toMatchObject({ code: 'binding_certificate_missing' });
    expect(
      bindingOutcome(
        CERT,
        CERT_BOUND,
        proofs({ certificate: { kind: 'invalid', description: 'unreadable' } }),
      ),
    ).toMatchObject({ code: 'binding_certificate_invalid' });
    expect(
      bindingOutcome(CERT, CERT_BOUND, proofs({ certificate: { kind: 'present', thumbprint: JKT } })),
    ).toMatchObject({ code: 'binding_certificate_mismatch' });
    expect(
      bindingOutcome(CERT, CERT_BOUND, proofs({ certificate: { kind: 'present', thumbprint: X5T } })),
    ).toBeUndefined();
  });

  it('checks both bindings of a token bound both ways', () => {
    const both: ProofNeeds = { dpop: true, certificate: true };
    const valid = { kind: 'valid', thumbprint: JKT, claim: FRESH } as const;
    expect(bindingOutcome(both, BOTH_BOUND, proofs({ dpop: valid }))).toMatchObject({
      code: 'binding_certificate_missing',
    });
    expect(
      bindingOutcome(
        both,
        BOTH_BOUND,
        proofs({ dpop: valid, certificate: { kind: 'present', thumbprint: X5T } }),
      ),
    ).toBeUndefined();
  });
});

describe('replayOutcome: what claiming the jti of a proof whose key holds the binding found', () => {
  it('passes a fresh jti, and refuses a replay as an invalid proof', () => {
    expect(replayOutcome({ kind: 'fresh' })).toBeUndefined();
    expect(replayOutcome({ kind: 'replayed' })).toMatchObject({ code: 'dpop_proof_replayed' });
  });

  it('tells a client over its share when to retry, naming whose share it is', () => {
    expect(replayOutcome({ kind: 'over_quota', share: 'key', retryAfterSeconds: 7 })).toEqual({
      code: 'dpop_proof_quota_exceeded',
      description: 'too many DPoP proofs of this key are still within their replay window: retry later',
      retryAfterSeconds: 7,
    });
    expect(replayOutcome({ kind: 'over_quota', share: 'subject', retryAfterSeconds: 3 })).toMatchObject({
      description: expect.stringContaining('of this user'),
    });
  });

  it('refuses every proof while the store is full for everyone', () => {
    expect(replayOutcome({ kind: 'full' })).toMatchObject({ code: 'dpop_replay_cache_full' });
  });

  it('refuses every proof while the shared store cannot be asked, rather than accept one unchecked', () => {
    expect(replayOutcome({ kind: 'unavailable' })).toMatchObject({ code: 'dpop_replay_store_unavailable' });
  });
});
