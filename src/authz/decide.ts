import type { RequestFacts } from './request-facts.js';
import type { TokenVerification, VerifiedToken } from './token-verification.js';
import type { AuthenticationRequirement, CompiledRoute } from '../policy/compiled-policy.js';
import { matchRoute } from '../policy/match-route.js';
import type { AuthScheme } from './auth-scheme.js';
import type { Decision } from './decision.js';
import type { PreparedOutcomes } from './prepared-outcomes.js';
import { normalisedRequestPath } from './request-path.js';

/** The first step's outcome: decided already, or credentials to verify for a protected route. */
export type RouteStep<Presented> =
  | { readonly kind: 'decided'; readonly decision: Decision }
  | {
      readonly kind: 'verify';
      readonly route: CompiledRoute & { access: { kind: 'protected' } };
      readonly presented: Presented;
      /** The scheme the token came with. */
      readonly scheme: AuthScheme;
      /** The normalised request path, without the query: a DPoP proof's `htu` names it. */
      readonly path: string;
    };

/**
 * Step one, pure: matches the route and looks at the credentials. Order matters: an unmatched request is
 * denied before credentials are looked at (nothing to challenge for), and a public route never needs them.
 * The decisions it returns without verifying anything, but for malformed credentials, are the service's
 * prepared ones (`PreparedOutcomes.authorizationOf`).
 */
export function routePreparedRequest<Presented>(
  prepared: PreparedOutcomes,
  request: RequestFacts<Presented>,
): RouteStep<Presented> {
  const normalised = normalisedRequestPath(request.target);
  if ('problem' in normalised) {
    return { kind: 'decided', decision: prepared.pathInvalid[normalised.problem] };
  }
  const route = matchRoute(prepared.service, request.method, normalised.path);
  if (route === undefined) return { kind: 'decided', decision: prepared.noRoute };
  if (route.access.kind === 'public') return { kind: 'decided', decision: prepared.publicAllow(route) };

  const { credentials } = request;
  if (credentials.kind === 'none') {
    return { kind: 'decided', decision: prepared.credentialsMissing(route) };
  }
  if (credentials.kind === 'malformed') {
    return {
      kind: 'decided',
      decision: {
        kind: 'deny',
        code: 'credentials_malformed',
        description: credentials.description,
        route,
        ...(credentials.scheme === undefined ? {} : { scheme: credentials.scheme }),
      },
    };
  }
  // The DPoP scheme where no issuer's tokens may use it is answered like no credentials (RFC 6750 section
  // 3.1), with the challenges of the schemes the route accepts: no proof could be checked. A Bearer token
  // where DPoP is required is verified first, so that its refusal says why (a DPoP-bound token sent as
  // Bearer, or an unbound one) and the log says whose token it was.
  if (credentials.scheme === 'DPoP' && !route.schemes.dpop) {
    return {
      kind: 'decided',
      decision: {
        kind: 'deny',
        code: 'scheme_not_accepted',
        description: `this API does not accept the ${credentials.scheme} scheme here`,
        route,
        scheme: credentials.scheme,
      },
    };
  }
  return {
    kind: 'verify',
    route: route as CompiledRoute & { access: { kind: 'protected' } },
    presented: credentials.value,
    scheme: credentials.scheme,
    path: normalised.path,
  };
}

/**
 * Step two, pure: given the verification of the presented token, does the route let it through?
 *
 * Precedence once the token is valid: missing scopes first (403 `insufficient_scope`), then the strength
 * or age of the login (401 `insufficient_user_authentication`, RFC 9470). Scopes come first because a
 * new login for the missing scope is what the client must do anyway, and the identity provider applies its
 * own step-up rules to that request (it demands MFA for `transfer:funds`); asking for a stronger login
 * while the scope is still missing would only cost the user a second round trip.
 *
 * @param nowMs milliseconds since the epoch, for `max_age`.
 */
export function decideAccess(
  route: CompiledRoute & { access: { kind: 'protected' } },
  verification: TokenVerification,
  nowMs: number,
): Decision {
  if (verification.kind === 'keys_unavailable') {
    return {
      kind: 'deny',
      code: 'keys_unavailable',
      description: 'the token issuer keys are temporarily unavailable',
      route,
      issuer: verification.issuer,
    };
  }
  if (verification.kind === 'invalid') {
    return { kind: 'deny', code: verification.reason, description: verification.description, route };
  }
  const { token } = verification;
  const required = route.access.scopes;
  const missing = required.filter((scope) => !token.scopes.has(scope));
  if (missing.length > 0) {
    return {
      kind: 'deny',
      code: 'insufficient_scope',
      description: `the token lacks a required scope: ${missing.join(' ')}`,
      route,
      requiredScopes: required,
      missingScopes: missing,
      issuer: token.issuer,
      ...(token.subject === undefined ? {} : { subject: token.subject }),
      identity: token,
    };
  }
  const requirement = route.access.authentication;
  if (requirement !== undefined) {
    const shortfall = loginShortfall(requirement, token, nowMs);
    if (shortfall !== undefined) {
      return {
        kind: 'deny',
        code: 'insufficient_user_authentication',
        description: shortfall.description,
        route,
        stepUp: shortfall.stepUp,
        issuer: token.issuer,
        ...(token.subject === undefined ? {} : { subject: token.subject }),
        identity: token,
      };
    }
  }
  return { kind: 'allow', route, identity: token };
}

/** What is wrong with the login, if anything, and what to ask the identity provider for. */
function loginShortfall(
  requirement: AuthenticationRequirement,
  token: VerifiedToken,
  nowMs: number,
): { description: string; stepUp: { acrValues?: readonly string[]; maxAgeSeconds?: number } } | undefined {
  const { acrValues, amr, maxAgeSeconds } = requirement;
  const acrShort = acrValues !== undefined && (token.acr === undefined || !acrValues.includes(token.acr));
  const amrShort = amr !== undefined && !amr.every((method) => token.amr.has(method));
  // A missing auth_time cannot show the login is recent enough, so it counts as too old (RFC 9470 section 3).
  const ageShort =
    maxAgeSeconds !== undefined &&
    (token.authTime === undefined || Math.floor(nowMs / 1000) - token.authTime > maxAgeSeconds);
  if (!acrShort && !amrShort && !ageShort) return undefined;

  const reasons: string[] = [];
  if (acrShort || amrShort) reasons.push('a stronger authentication is required');
  if (ageShort) reasons.push(`the authentication must be at most ${maxAgeSeconds} seconds old`);
  return {
    description: reasons.join('; '),
    stepUp: {
      // The route's acr_values tell the client what to ask for, whichever of acr or amr fell short.
      ...((acrShort || amrShort) && acrValues !== undefined ? { acrValues } : {}),
      ...(ageShort ? { maxAgeSeconds } : {}),
    },
  };
}
