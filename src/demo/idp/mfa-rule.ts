import { ACR_MFA, MFA_SCOPE } from './protocol-values.js';

/** Why a login must complete multi-factor authentication before tokens are issued. Development only. */
export type MfaReason = 'scope' | 'acr_values' | 'max_age';

/**
 * The development identity provider's stand-in for the scenario's Auth0 Action, which calls
 * `api.multifactor.enable` when `transfer:funds` is requested. It also honours what an RFC 9470 step-up
 * challenge asks a client to send: `acr_values` naming `urn:bank:mfa`, or any `max_age` (the API wants a
 * fresh strong login, and the only strong login here is one with a second factor). Development only.
 *
 * @returns every reason that applies, empty when a password is enough.
 */
export function mfaReasons(request: {
  readonly scopes: readonly string[];
  readonly acrValues: readonly string[];
  readonly maxAgeSeconds: number | undefined;
}): MfaReason[] {
  const reasons: MfaReason[] = [];
  if (request.scopes.includes(MFA_SCOPE)) reasons.push('scope');
  if (request.acrValues.includes(ACR_MFA)) reasons.push('acr_values');
  if (request.maxAgeSeconds !== undefined) reasons.push('max_age');
  return reasons;
}
