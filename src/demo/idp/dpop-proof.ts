import { calculateJwkThumbprint, EmbeddedJWK, errors, jwtVerify, type JWK } from 'jose';
import { OAuthError } from './oauth-error.js';

/**
 * The proof algorithms the token endpoint accepts (RFC 9449 section 5.1): asymmetric only, so `none` and
 * the HMAC family can never pass (section 4.3, check 5). Discovery lists them as
 * `dpop_signing_alg_values_supported`. Development only.
 */
export const DPOP_ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
  'EdDSA',
  'Ed25519', // RFC 9864
] as const;

/** How far a proof's `iat` may lie from the provider's clock, either way. Development only. */
export const DPOP_PROOF_WINDOW_SECONDS = 60;

// JWK members that only a private or symmetric key has (RFC 7518 sections 6.2.2, 6.3.2 and 6.4.1).
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** What the token endpoint needs to check a proof. Development only. */
export interface DpopProofContext {
  /** The token endpoint's URL as discovery publishes it: `htu` must name it (query and fragment ignored). */
  readonly tokenEndpoint: string;
  /** Milliseconds since the epoch. */
  readonly nowMs: number;
}

/**
 * Checks the `DPoP` header values of a token request (RFC 9449 section 4.3, as section 5 asks of the
 * authorization server) and returns the RFC 7638 thumbprint of the proof's key, the `cnf.jkt` to bind the
 * token to; undefined when the request carries no proof (the token stays a bearer token). Nonces are not
 * asked for and `jti` values are not remembered: the provider is a development stand-in, and a proof's only
 * use here is to name the key. Development only.
 *
 * @param values every `DPoP` header line of the request, as received.
 * @throws OAuthError 400 `invalid_dpop_proof` (RFC 9449 section 5): more than one header, or a proof that
 * fails a check; the description says which.
 */
export async function verifyTokenRequestProof(
  values: readonly string[],
  context: DpopProofContext,
): Promise<string | undefined> {
  if (values.length === 0) return undefined;
  // A comma cannot occur in a compact JWS: one means a proxy joined two header lines into one.
  if (values.length > 1 || values[0]!.includes(',')) throw invalidProof('send exactly one DPoP header');
  const proof = values[0]!.trim();

  let verified: Awaited<ReturnType<typeof jwtVerify>>;
  try {
    verified = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: [...DPOP_ALGORITHMS],
      // iat is checked below, both ways, against the provider's own clock.
      currentDate: new Date(context.nowMs),
    });
  } catch (error) {
    if (error instanceof errors.JOSEError) throw invalidProof(`the proof does not verify (${error.code})`);
    throw error;
  }
  const { payload, protectedHeader } = verified;
  const jwk = protectedHeader.jwk as JWK;
  // jose refuses a private key already; a symmetric or half-private member is refused here by name.
  if (PRIVATE_MEMBERS.some((member) => member in jwk))
    throw invalidProof('the jwk holds private key members');
  if (typeof payload.jti !== 'string' || payload.jti === '') throw invalidProof('jti is required');
  if (payload['htm'] !== 'POST') throw invalidProof('htm must be POST');
  const htu = payload['htu'];
  if (typeof htu !== 'string' || normalizedUri(htu) !== normalizedUri(context.tokenEndpoint))
    throw invalidProof('htu must be the token endpoint URL');
  const iat = payload.iat;
  if (typeof iat !== 'number' || Math.abs(context.nowMs / 1000 - iat) > DPOP_PROOF_WINDOW_SECONDS)
    throw invalidProof(`iat must be within ${DPOP_PROOF_WINDOW_SECONDS} seconds of now`);
  return calculateJwkThumbprint(jwk, 'sha256');
}

/**
 * A URI for comparison (RFC 9449 section 4.3, check 9, with RFC 3986 section 6.2.2 and 6.2.3): the WHATWG
 * parser lower-cases scheme and host and drops a default port; query and fragment are left out. Undefined
 * for a string that is not an absolute URL, which then matches nothing.
 */
function normalizedUri(uri: string): string | undefined {
  if (!URL.canParse(uri)) return undefined;
  const url = new URL(uri);
  url.search = '';
  url.hash = '';
  return url.href;
}

function invalidProof(description: string): OAuthError {
  return new OAuthError(400, 'invalid_dpop_proof', description);
}
