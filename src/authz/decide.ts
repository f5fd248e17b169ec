import { readBearerCredentials } from '../authn/bearer-credentials.js';
import type { TokenVerification } from '../authn/token-verification.js';
import type { CompiledPolicy, CompiledRoute } from '../policy/compiled-policy.js';
import { matchRoute } from '../policy/match-route.js';
import type { Decision } from './decision.js';
import { normalisedRequestPath } from './request-path.js';

/** The facts about one HTTP request that authorisation looks at. */
export interface RequestFacts {
  readonly method: string;
  /** The request target as received (origin-form, may include a query string). */
  readonly target: string;
  /** Every value of the `Authorization` header, in order. */
  readonly authorization: readonly string[];
}

/** The first step's outcome: decided already, or a token to verify for a protected route. */
export type RouteStep =
  | { readonly kind: 'decided'; readonly decision: Decision }
  | {
      readonly kind: 'verify_token';
      readonly route: CompiledRoute & { access: { kind: 'protected' } };
      readonly token: string;
    };

/**
 * Step one, pure: matches the route and reads the credentials. Order matters: an unmatched request is
 * denied before credentials are looked at (nothing to challenge for), and a public route never needs them.
 */
export function routeRequest(policy: CompiledPolicy, request: RequestFacts): RouteStep {
  const decided = (decision: Decision): RouteStep => ({ kind: 'decided', decision });
  const normalised = normalisedRequestPath(request.target);
  if ('problem' in normalised) {
    return decided({
      kind: 'deny',
      code: 'path_invalid',
      description: `the request path is not acceptable (${normalised.problem})`,
    });
  }
  const route = matchRoute(policy, request.method, normalised.path);
  if (route === undefined)
    return decided({ kind: 'deny', code: 'no_route', description: 'no route allows this request' });
  if (route.access.kind === 'public') return decided({ kind: 'allow', route });

  const credentials = readBearerCredentials(request.authorization);
  if (credentials.kind === 'none') {
    return decided({
      kind: 'deny',
      code: 'credentials_missing',
      description: 'a bearer token is required',
      route,
    });
  }
  if (credentials.kind === 'malformed') {
    return decided({
      kind: 'deny',
      code: 'credentials_malformed',
      description: credentials.description,
      route,
    });
  }
  return {
    kind: 'verify_token',
    route: route as CompiledRoute & { access: { kind: 'protected' } },
    token: credentials.token,
  };
}

/** Step two, pure: given the verification of the presented token, does the route let it through? */
export function decideAccess(
  route: CompiledRoute & { access: { kind: 'protected' } },
  verification: TokenVerification,
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
    };
  }
  return { kind: 'allow', route, identity: token };
}
