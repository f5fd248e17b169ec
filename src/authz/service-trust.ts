import type { CompiledService } from '../policy/compiled-policy.js';
import type { TokenVerification } from './token-verification.js';

/**
 * A verified token as one service sees it, pure: the token must come from an issuer the service trusts and
 * be meant for one of the audiences it accepts from that issuer (verification checked the audiences of
 * every service; RFC 8725 section 3.9: a token for one API must not pass at another), and every claim the
 * service passes on in a header must be fit for one (refused, never mangled).
 */
export function verificationForService(
  service: CompiledService,
  verification: TokenVerification,
): TokenVerification {
  if (verification.kind !== 'verified') return verification;
  const { token } = verification;
  const audiences = service.trust.get(token.issuer);
  if (audiences === undefined) {
    return {
      kind: 'invalid',
      reason: 'token_issuer_unknown',
      description: 'the token was not issued by a trusted issuer',
    };
  }
  let meantForIt = false;
  for (const audience of token.audiences) {
    if (audiences.has(audience)) {
      meantForIt = true;
      break;
    }
  }
  if (!meantForIt) {
    return {
      kind: 'invalid',
      reason: 'token_audience_mismatch',
      description: 'the token is not meant for this API',
    };
  }
  for (const { claim } of service.claimHeaders) {
    if (token.headerClaims.has(claim) && token.headerClaims.get(claim) === undefined) {
      return {
        kind: 'invalid',
        reason: 'token_claims_invalid',
        description: `the ${claim} claim cannot be passed on in a header`,
      };
    }
  }
  return verification;
}
