import {
  decodeJwt,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import type { CompiledPolicy, IssuerPolicy } from '../policy/compiled-policy.js';
import type { IssuerKeys } from './issuer-keys.js';
import { KeySetError } from './key-set-errors.js';
import { checkTokenLifetime, readTokenClaims } from './read-token-claims.js';
import { tokenDigest, type VerifiedTokenCaches } from './verified-token-cache.js';
import type { CredentialVerifier } from '../authz/credentials.js';
import type { DpopProofCheck, PossessionProofs, ProofRequest } from '../authz/possession-proof.js';
import type { DpopProofPolicy } from '../policy/compiled-policy.js';
import { clientCertificateCheck } from './client-certificate.js';
import { DpopNonces } from './dpop-nonces.js';
import { checkDpopProof } from './dpop-proof.js';
import { DpopProofKeys } from './dpop-proof-keys.js';
import { MemoryReplayStore, type ReplayStore } from './dpop-replay-store.js';
import type { InvalidTokenReason, TokenVerification } from '../authz/token-verification.js';
import type { SpanAttributes, StepTracing } from '../tracing/check-tracing.js';

export interface VerifyContext {
  readonly policy: CompiledPolicy;
  readonly keysFor: (issuer: string) => IssuerKeys | undefined;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /**
   * The issuers' verified-token caches (`KeyRing.tokenCaches`), so that a token seen before skips signature
   * and claim verification; omitted: every token is verified in full.
   */
  readonly tokenCaches?: VerifiedTokenCaches;
  /**
   * The state proofs of possession are checked with: the replay store and the nonce key, which outlive
   * policy versions; omitted: a replay store and a random nonce key of this verifier's own.
   */
  readonly possession?: PossessionState;
  /**
   * Child spans of the Check under way (tracing on): token verification on a cache miss, DPoP proof checks;
   * and the Check span's `authz.token_cache`.
   */
  readonly steps?: StepTracing;
}

/** What checking proofs of possession keeps between requests, for the life of the process. */
export interface PossessionState {
  readonly replayStore: ReplayStore;
  readonly nonces: DpopNonces;
  readonly proofKeys: DpopProofKeys;
}

/**
 * The server's verifier for `authorize()`: access tokens checked against the policy's issuers and their
 * keys, as `verifyAccessToken` does, and their proofs of possession (a DPoP proof, the client certificate)
 * as `checkDpopProof` and `clientCertificateCheck` do. Built once per policy version, not per request.
 */
export function bearerTokenVerifier(context: VerifyContext): CredentialVerifier<string> {
  const possession = context.possession ?? {
    replayStore: new MemoryReplayStore(),
    nonces: DpopNonces.withRandomKey(),
    proofKeys: new DpopProofKeys(),
  };
  const { policy, steps } = context;
  const checkProof = async (
    token: string,
    request: ProofRequest,
    dpop: DpopProofPolicy,
  ): Promise<DpopProofCheck> =>
    checkDpopProof({
      proofs: request.dpopProofs,
      accessToken: token,
      method: request.method,
      uris: request.uris,
      service: request.service,
      policy: dpop,
      replay: {
        store: possession.replayStore,
        limits: policy.dpopReplayLimits,
        subject:
          request.token.subject === undefined
            ? undefined
            : `${request.token.issuer} ${request.token.subject}`,
      },
      nonces: possession.nonces,
      proofKeys: possession.proofKeys,
      maxRsaKeyBits: policy.maxRsaKeyBits,
      nowMs: context.now(),
    });
  // Traced: the proof's check, and the claim of its `jti` in the replay store (Redis: a network call).
  const proveDpop = async (
    token: string,
    request: ProofRequest,
    dpop: DpopProofPolicy,
  ): Promise<DpopProofCheck> => {
    if (steps === undefined) return checkProof(token, request, dpop);
    const check = await steps.step(
      'authz.check_dpop_proof',
      {},
      () => checkProof(token, request, dpop),
      dpopOutcome,
    );
    if (check.kind !== 'valid') return check;
    return {
      ...check,
      claim: () =>
        steps.step(
          'authz.claim_dpop_proof',
          {},
          async () => check.claim(),
          (claim) => ({
            'authz.dpop.replay': claim.kind,
          }),
        ),
    };
  };
  return {
    verify: (token) => verifyAccessToken(token, context),
    prove: async (token, request: ProofRequest): Promise<PossessionProofs> => ({
      dpop: request.dpop === undefined ? { kind: 'none' } : await proveDpop(token, request, request.dpop),
      certificate: request.certificate ? clientCertificateCheck(request.clientCertificate) : { kind: 'none' },
    }),
  };
}

/** A verification step's outcome, for its span: `verified`, or why not (never the token or its claims). */
function verificationOutcome(verification: TokenVerification): SpanAttributes {
  return {
    'authz.verification': verification.kind === 'invalid' ? verification.reason : verification.kind,
    ...(verification.kind === 'verified' ? { 'authz.issuer': verification.token.issuer } : {}),
  };
}

/** A DPoP proof check's outcome, for its span: `valid`, or the refusal's code. */
function dpopOutcome(check: DpopProofCheck): SpanAttributes {
  return { 'authz.dpop.proof': check.kind === 'invalid' ? check.code : check.kind };
}

/** When several keys in a set could have signed a token without `kid`, at most this many are tried. */
const MAX_CANDIDATE_KEYS = 8;

const invalid = (reason: InvalidTokenReason, description: string): TokenVerification => ({
  kind: 'invalid',
  reason,
  description,
});

/**
 * Verifies a bearer access token (a JWS-signed JWT) against the policy's trusted issuers: size, issuer,
 * allowed algorithm, signature with the issuer's published keys, `exp` (required), `nbf`, `aud`, `iat` not
 * in the future, a lifetime within the issuer's `max_token_lifetime`, and the shape of the claims this
 * service relies on. Never throws for anything about the token; an unexpected internal fault propagates.
 *
 * With `context.tokenCaches`, a token verified before under the issuer's current key set is answered from
 * its cache (its `exp` and `nbf` checked again), and a token verified now is remembered there.
 */
export async function verifyAccessToken(token: string, context: VerifyContext): Promise<TokenVerification> {
  const { policy, tokenCaches, steps } = context;
  if (token.length > policy.maxTokenBytes) return invalid('token_too_large', 'the token is too large');

  const digest = tokenCaches?.enabled === true ? tokenDigest(token) : undefined;
  if (digest !== undefined) {
    const cached = tokenCaches?.find(digest);
    steps?.annotate('authz.token_cache', cached === undefined ? 'miss' : 'hit');
    if (cached !== undefined) return cached;
  }
  if (steps === undefined) return verifyInFull(token, context, digest);
  return steps.step(
    'authz.verify_token',
    {},
    () => verifyInFull(token, context, digest),
    verificationOutcome,
  );
}

/** Signature and claims: a token not found in its issuer's cache (`digest` its key there, if cached). */
async function verifyInFull(
  token: string,
  context: VerifyContext,
  digest: string | undefined,
): Promise<TokenVerification> {
  const { policy, tokenCaches } = context;
  // The unverified `iss` only selects which issuer's rules and keys apply; jwtVerify checks it again.
  let unverified: JWTPayload;
  try {
    unverified = decodeJwt(token);
  } catch {
    return invalid('token_malformed', 'the token is not a well-formed JWT');
  }
  const issuer = typeof unverified.iss === 'string' ? policy.issuers.get(unverified.iss) : undefined;
  const keys = issuer === undefined ? undefined : context.keysFor(issuer.issuer);
  if (issuer === undefined || keys === undefined) {
    return invalid('token_issuer_unknown', 'the token was not issued by a trusted issuer');
  }

  const found = digest === undefined ? undefined : tokenCaches?.forIssuer(issuer.issuer);
  const cache = found?.keys === keys ? found : undefined; // only a cache over these keys may remember
  cache?.noteMiss();
  const generation = keys.generation; // the key set verification starts with

  const nowMs = context.now(); // one instant for jwtVerify and the checks after it
  let payload: JWTPayload;
  try {
    payload = await verifyWithIssuer(token, issuer, keys.getKey, nowMs);
  } catch (error) {
    if (error instanceof KeySetError && error.code === 'ERR_JWKS_UNAVAILABLE') {
      return { kind: 'keys_unavailable', issuer: issuer.issuer };
    }
    const refused = refusalFor(error);
    if (refused === undefined) throw error;
    return refused;
  }

  const verification =
    checkTokenLifetime(payload, issuer, Math.floor(nowMs / 1000)) ??
    checkSubjectPresent(payload, issuer) ??
    readTokenClaims(payload, issuer);
  if (cache !== undefined && digest !== undefined && verification.kind === 'verified') {
    cache.remember(digest, verification, payload, generation);
  }
  return verification;
}

/**
 * RFC 9068 section 2.2: a JWT access token names its subject in `sub`. Required unless the issuer's
 * `require_sub: false` says its tokens omit it. (Given claims of the policy tools are a hypothesis about a
 * token and are not held to it: docs/policy-tests.md.)
 */
function checkSubjectPresent(payload: JWTPayload, issuer: IssuerPolicy): TokenVerification | undefined {
  if (!issuer.requireSubject || payload.sub !== undefined) return undefined;
  return invalid('token_claims_invalid', 'the token has no sub claim');
}

/** What jwtVerify checks for an issuer, but the current time: built once per issuer policy, not per token. */
type IssuerVerifyOptions = Omit<JWTVerifyOptions, 'currentDate'>;

const verifyOptionsByIssuer = new WeakMap<IssuerPolicy, IssuerVerifyOptions>();

function verifyOptionsFor(issuer: IssuerPolicy): IssuerVerifyOptions {
  let options = verifyOptionsByIssuer.get(issuer);
  if (options === undefined) {
    options = Object.freeze({
      issuer: issuer.issuer,
      audience: [...issuer.audiences],
      algorithms: [...issuer.algorithms],
      clockTolerance: issuer.clockToleranceSeconds,
      requiredClaims: ['exp'],
      ...(issuer.requiredTyp === undefined ? {} : { typ: issuer.requiredTyp }),
    });
    verifyOptionsByIssuer.set(issuer, options);
  }
  return options;
}

async function verifyWithIssuer(
  token: string,
  issuer: IssuerPolicy,
  getKey: JWTVerifyGetKey,
  nowMs: number,
): Promise<JWTPayload> {
  const options: JWTVerifyOptions = { ...verifyOptionsFor(issuer), currentDate: new Date(nowMs) };
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    // No `kid` and several keys fit: try each (bounded), as jose documents for this case.
    let tried = 0;
    for await (const key of error) {
      if (++tried > MAX_CANDIDATE_KEYS) break;
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (attempt) {
        if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/** Maps jose's error codes (stable, documented) to why the token is refused. */
function refusalFor(error: unknown): TokenVerification | undefined {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalid('token_expired', 'the token has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (error as errors.JWTClaimValidationFailed).claim;
      if (claim === 'nbf') return invalid('token_not_yet_valid', 'the token is not valid yet');
      if (claim === 'aud') return invalid('token_audience_mismatch', 'the token is not meant for this API');
      if (claim === 'iss')
        return invalid('token_issuer_unknown', 'the token was not issued by a trusted issuer');
      if (claim === 'exp') return invalid('token_claims_invalid', 'the token has no valid exp claim');
      if (claim === 'typ')
        return invalid('token_type_invalid', 'the token is not an access token of the required type');
      return invalid('token_claims_invalid', `the ${String(claim)} claim is invalid`);
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return invalid(
        'token_algorithm_not_allowed',
        'the token is signed with an algorithm that is not allowed',
      );
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return invalid('token_key_unknown', 'the token is signed with an unknown key');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('token_signature_invalid', 'the token signature is invalid');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
    case 'ERR_JWK_INVALID':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JOSE_GENERIC':
      return invalid('token_malformed', 'the token is not a well-formed JWT');
    default:
      // WebCrypto refusing a key (e.g. an RSA modulus too short) is jose's TypeError, not a JOSE code.
      if (error instanceof TypeError)
        return invalid('token_key_unknown', 'the token is signed with an unusable key');
      return undefined;
  }
}
