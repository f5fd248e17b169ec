import type { TokenVerification } from '../authz/token-verification.js';
import type { Answer } from '../authz/answer-for-decision.js';
import { normalisedRequestHost } from '../authz/request-host.js';
import { normalisedRequestPath } from '../authz/request-path.js';
import type { Decision } from '../authz/decision.js';
import type {
  CompiledPolicy,
  CompiledRoute,
  CompiledService,
  IssuerPolicy,
} from '../policy/compiled-policy.js';
import { findingsConcerning, type PolicyFinding } from '../policy/policy-findings.js';
import { displayYamlPath } from '../policy/yaml-locations.js';
import { authorize } from '../authz/authorize.js';
import { constraintSource, CONSTRAINT_MEMBERS, type ConstraintSource } from '../policy/sender-constraints.js';
import type { AuthScheme } from '../authz/credentials.js';
import { GIVEN_CLIENT_CERTIFICATE, GIVEN_DPOP_PROOF, SETTLED_VERIFICATION } from './given-claims.js';
import type { OpsRequest } from './ops-request.js';

/** How many routes before the match (or, without a match, routes in all) are listed with their reason. */
export const MAX_SKIPPED_LISTED = 20;

/** The credentials to explain with. The token itself never appears in an explanation. */
export type ExplainCredentials =
  | { readonly kind: 'none' }
  /** `--claims`: taken as verified claims (see `verificationForGivenClaims`). */
  | { readonly kind: 'claims'; readonly verification: TokenVerification }
  /** `--token`: verified for real; `unverified` holds a few claims read without trust, to explain a refusal. */
  | {
      readonly kind: 'token';
      readonly token: string;
      readonly verification: TokenVerification;
      readonly unverified?: { readonly iss?: unknown; readonly sub?: unknown; readonly exp?: unknown };
      /** Why the issuer's keys could not be obtained, when they could not. */
      readonly keyProblem?: string;
    };

/** A route as an explanation names it. */
export interface RouteSummary {
  /** 0-based position among its service's routes. */
  readonly index: number;
  /** Where it is in the file: `routes[1]`, or `services[0].routes[1]`. */
  readonly path: string;
  readonly line: number;
  readonly name: string;
}

/**
 * The service a request is for and how it was chosen (docs/policy.md, "Services"), or why none was. A
 * file without `services` has one service, `default`, for every host.
 */
export type ServiceSummary =
  | {
      readonly name: string;
      readonly line: number;
      /**
       * `name`: the proxy named it (ext_authz `context_extensions` `service`), which takes precedence over the
       * host; `host`: it lists the request's host; `wildcard`: it lists `*.` and the host less its first
       * label; `every_host`: the implicit service of a file without `services`.
       */
      readonly chosen_by: 'name' | 'host' | 'wildcard' | 'every_host';
      /** The `hosts` entry that matched, for `host` and `wildcard`. */
      readonly matched?: string;
      readonly realm: string;
      /** In a policy directory: the service file it is in (`line` is in that file), and the file's owner. */
      readonly file?: string;
      readonly owner?: string;
    }
  | {
      readonly name: null;
      readonly code: 'no_service' | 'service_unknown';
      readonly description: string;
    };

/** What a route demands, in the policy's own terms. */
export interface RouteRequirements {
  readonly public: boolean;
  readonly scopes?: readonly string[];
  readonly authentication?: {
    readonly acr_values?: readonly string[];
    readonly amr?: readonly string[];
    readonly max_age?: number;
  };
  readonly mode: 'enforce' | 'report-only';
  /** The authorization schemes the route accepts (RFC 9449 section 7.1); none for a public route. */
  readonly schemes?: readonly AuthScheme[];
  /**
   * The sender constraint in force on the route (docs/sender-constraints.md): for the token's issuer when
   * the service trusts it, else for every issuer the service trusts.
   */
  readonly sender_constraint?: readonly SenderConstraintSummary[];
}

/** One member of a sender constraint in force, and the level it comes from. */
export interface ConstraintMemberSummary {
  readonly value: 'off' | 'allowed' | 'required';
  /**
   * The most specific level that sets it: `route`, `service` (the top level for a file without services,
   * or for a service that inherits it), `issuer`, else `default` (off).
   */
  readonly from: ConstraintSource;
}

/** The sender constraint in force on a route for the tokens of one issuer. */
export interface SenderConstraintSummary {
  readonly issuer: string;
  /** DPoP-bound tokens (RFC 9449, `cnf.jkt`). */
  readonly dpop: ConstraintMemberSummary;
  /** Certificate-bound tokens (RFC 8705, `cnf["x5t#S256"]`). */
  readonly mtls: ConstraintMemberSummary;
}

/** The limits the token's issuer sets, in the policy's own terms (docs/policy.md, "Token validation"). */
export interface IssuerLimits {
  /** Seconds of leeway on `exp`, `nbf`, `iat` and the lifetime. */
  readonly clock_tolerance: number;
  /** The longest `exp - iat` (or `exp - now`) accepted, in seconds. */
  readonly max_token_lifetime: number;
  /** How long cached keys are used past the last successful fetch while refreshes fail, in seconds. */
  readonly jwks_max_stale: number;
  /** The longest a request waits for keys not yet held, in milliseconds. */
  readonly jwks_fetch_wait_ms: number;
}

/** What a token carries, as the decision sees it. */
export interface TokenSummary {
  readonly presented: 'none' | 'claims' | 'token';
  /** Whether the claims are trusted: a real token that verified. Given claims never are. */
  readonly verified: boolean;
  /** One sentence about how far the claims can be trusted. */
  readonly note: string;
  readonly issuer?: string;
  readonly sub?: string;
  readonly scopes?: readonly string[];
  readonly acr?: string;
  readonly amr?: readonly string[];
  readonly auth_time?: number;
  /** Why the token (or the given claims) cannot be used. */
  readonly refused?: { readonly reason: string; readonly description: string };
  /** Why the chosen service refuses a token that verified (an issuer or audience it does not accept). */
  readonly service_refused?: { readonly reason: string; readonly description: string };
  /** Claims of a refused token, read without verification, to help see why. */
  readonly unverified?: { readonly iss?: string; readonly sub?: string; readonly exp?: number };
  /** The limits of the issuer the token names, when the policy trusts it. */
  readonly limits?: IssuerLimits;
  /**
   * What the token is bound to (`cnf`): the RFC 7638 thumbprint of a DPoP key (`jkt`), the SHA-256
   * thumbprint of a client certificate (`x5t#S256`). Empty: a bearer token. Thumbprints are public.
   */
  readonly binding?: { readonly jkt?: string; readonly 'x5t#S256'?: string };
}

/** The exact response: a denial as sent, or what the upstream receives on allow. */
export type ResponseSummary =
  | {
      readonly kind: 'deny';
      readonly status: number;
      /**
       * The response headers by name; a header sent more than once (a challenge per scheme, RFC 9449
       * section 7.1) has its values joined with ", ", as a client's `Headers.get()` reads them.
       */
      readonly headers: Readonly<Record<string, string>>;
      /** Each `WWW-Authenticate` header line as sent, one challenge each; absent when there is none. */
      readonly www_authenticate?: readonly string[];
      readonly body: string;
    }
  | {
      readonly kind: 'allow';
      /** Request headers set for the upstream (client copies replaced). */
      readonly set_headers: Readonly<Record<string, string>>;
      /** Request headers removed before the upstream sees them. */
      readonly remove_headers: readonly string[];
    };

/** Everything `authz explain` says, as data (`--json` prints it as is). */
export interface Explanation {
  readonly request: {
    readonly method: string;
    readonly target: string;
    /** The host as given (`--host`), before normalising. */
    readonly host?: string;
    /** The service the proxy names (`--service`: ext_authz `context_extensions` `service`). */
    readonly service?: string;
    /** The scheme the credentials are presented with, when there are credentials. */
    readonly scheme?: AuthScheme;
    /** Whether the request is said to carry a valid DPoP proof from the token's key (`--dpop-proof`). */
    readonly dpop_proof: boolean;
    /** Whether the connection is said to present the token's client certificate (`--client-cert`). */
    readonly client_certificate: boolean;
    /** The path routes are matched on (no query), or why the path is refused before any matching. */
    readonly path?: string;
    readonly path_problem?: string;
  };
  readonly service: ServiceSummary;
  /** The route that decided, or null; `methods` null: the route applies to every method. */
  readonly route:
    | (RouteSummary & { readonly methods: readonly string[] | null; readonly requires: RouteRequirements })
    | null;
  /**
   * Routes of the chosen service tried before it (all of them, without a match), each with why it did not
   * match; none when no service was chosen.
   */
  readonly skipped: readonly (RouteSummary & { readonly reason: string })[];
  /** Skipped routes not listed, beyond MAX_SKIPPED_LISTED. */
  readonly skipped_not_listed: number;
  readonly token: TokenSummary;
  readonly decision: {
    readonly kind: 'allow' | 'deny';
    readonly code?: string;
    readonly description?: string;
    readonly missing_scopes?: readonly string[];
    /** Under report-only: the denial that was logged instead of answered. */
    readonly would_deny?: { readonly code: string; readonly description: string };
  };
  readonly response: ResponseSummary;
  /** Under report-only: the response the denial would have had. */
  readonly would_deny_response?: ResponseSummary;
  /**
   * The policy findings (docs/policy-checks.md) about the route that decided and about the chosen service,
   * accepted ones included and marked; empty when none were given or none concern them.
   */
  readonly findings: readonly PolicyFinding[];
}

/**
 * Explains one request: which route matched and why, what it requires, what the token has, the decision
 * and the exact response — all computed by the server's own pipeline (`authorize`). Pure (asynchronous
 * only because `authorize` is): the token, if any, was verified before.
 *
 * @param nowMs milliseconds since the epoch, for `max_age`.
 * @param findings the policy's findings (`policyFindings`), of which those about the route and its service
 *   are shown.
 */
export async function explainRequest(
  policy: CompiledPolicy,
  request: OpsRequest,
  credentials: ExplainCredentials,
  nowMs: number,
  findings: readonly PolicyFinding[] = [],
): Promise<Explanation> {
  const scheme = request.scheme ?? 'Bearer';
  const evaluation = await authorize(
    policy,
    {
      method: request.method,
      target: request.target,
      host: request.host,
      serviceName: request.serviceName,
      credentials:
        credentials.kind === 'none'
          ? credentials
          : { kind: 'presented', scheme, value: credentials.verification },
      // Said, not shown: the verifier takes them as valid and from the token's key (`givenProofs`).
      ...(request.dpopProof === true ? { dpopProofs: [GIVEN_DPOP_PROOF] } : {}),
      ...(request.clientCertificate === true ? { clientCertificate: GIVEN_CLIENT_CERTIFICATE } : {}),
    },
    SETTLED_VERIFICATION,
    () => nowMs,
  );
  const normalised = normalisedRequestPath(request.target);
  const path = 'path' in normalised ? normalised.path : undefined;
  const matched = evaluation.route;

  const { service } = evaluation;
  const skipped: (RouteSummary & { reason: string })[] = [];
  let skippedNotListed = 0;
  if (path !== undefined && service !== undefined) {
    const { routes } = service;
    const tried = matched === undefined ? routes : routes.slice(0, matched.index);
    for (const route of tried) {
      if (skipped.length >= MAX_SKIPPED_LISTED) {
        skippedNotListed++;
        continue;
      }
      const reason =
        route.methods !== null && !route.methods.has(request.method)
          ? `method ${request.method} is not one of ${[...route.methods].join(', ')}`
          : `path ${path} does not match ${route.pattern}`;
      skipped.push({ ...routeSummary(service, route), reason });
    }
  }

  const { decision } = evaluation;
  const wouldDeny = decision.kind === 'allow' ? decision.wouldDeny : undefined;
  const serviceRefused =
    credentials.kind !== 'none' &&
    credentials.verification.kind === 'verified' &&
    evaluation.verification !== undefined &&
    evaluation.verification.kind === 'invalid'
      ? { reason: evaluation.verification.reason, description: evaluation.verification.description }
      : undefined;
  return {
    request: {
      method: request.method,
      target: request.target,
      ...(request.host === undefined ? {} : { host: request.host }),
      ...(request.serviceName === undefined ? {} : { service: request.serviceName }),
      ...('path' in normalised ? { path: normalised.path } : { path_problem: normalised.problem }),
      ...(credentials.kind === 'none' ? {} : { scheme }),
      dpop_proof: request.dpopProof === true,
      client_certificate: request.clientCertificate === true,
    },
    service: serviceSummary(request, service, decision),
    route:
      matched === undefined || service === undefined
        ? null
        : {
            ...routeSummary(service, matched),
            methods: matched.methods === null ? null : [...matched.methods],
            requires: requirements(
              matched,
              constraintSummaries(policy, service, matched, explainedIssuer(policy, credentials)),
            ),
          },
    skipped,
    skipped_not_listed: skippedNotListed,
    token: {
      ...tokenSummary(credentials, explainedIssuer(policy, credentials)),
      ...(serviceRefused === undefined ? {} : { service_refused: serviceRefused }),
    },
    decision:
      decision.kind === 'allow'
        ? {
            kind: 'allow',
            ...(wouldDeny === undefined
              ? {}
              : { would_deny: { code: wouldDeny.code, description: wouldDeny.description } }),
          }
        : {
            kind: 'deny',
            code: decision.code,
            description: decision.description,
            ...(decision.missingScopes === undefined ? {} : { missing_scopes: decision.missingScopes }),
          },
    response: responseSummary(evaluation.answer),
    ...(evaluation.wouldDenyAnswer === undefined
      ? {}
      : { would_deny_response: responseSummary(evaluation.wouldDenyAnswer) }),
    findings:
      service === undefined
        ? []
        : findingsConcerning(ofServiceFile(findings, service), service, matched, policy, {
            method: request.method,
            path,
          }),
  };
}

function routeSummary(service: CompiledService, route: CompiledRoute): RouteSummary {
  return {
    index: route.index,
    path: displayYamlPath([...service.routesPath, route.index]),
    line: route.line,
    name: route.name,
  };
}

/** Which service `authorize` chose and by what rule (the order of `chooseService`), or why none. */
function serviceSummary(
  request: OpsRequest,
  service: CompiledService | undefined,
  decision: Decision,
): ServiceSummary {
  if (service === undefined) {
    const code =
      decision.kind === 'deny' && decision.code === 'service_unknown' ? decision.code : 'no_service';
    const description = decision.kind === 'deny' ? decision.description : '';
    return { name: null, code, description };
  }
  const chosen = {
    name: service.name,
    line: service.line,
    realm: service.realm,
    ...(service.origin === undefined ? {} : { file: service.origin.file, owner: service.origin.owner }),
  };
  if (request.serviceName !== undefined) return { ...chosen, chosen_by: 'name' };
  if (service.hosts === null) return { ...chosen, chosen_by: 'every_host' };
  const host = normalisedRequestHost(request.host) ?? '';
  if (service.hosts.includes(host)) return { ...chosen, chosen_by: 'host', matched: host };
  return { ...chosen, chosen_by: 'wildcard', matched: `*${host.slice(host.indexOf('.'))}` };
}

function requirements(
  route: CompiledRoute,
  senderConstraint: readonly SenderConstraintSummary[],
): RouteRequirements {
  if (route.access.kind === 'public') return { public: true, mode: route.mode };
  const auth = route.access.authentication;
  const schemes: AuthScheme[] = [];
  if (route.schemes.bearer) schemes.push('Bearer');
  if (route.schemes.dpop) schemes.push('DPoP');
  return {
    public: false,
    scopes: route.access.scopes,
    ...(auth === undefined
      ? {}
      : {
          authentication: {
            ...(auth.acrValues === undefined ? {} : { acr_values: auth.acrValues }),
            ...(auth.amr === undefined ? {} : { amr: auth.amr }),
            ...(auth.maxAgeSeconds === undefined ? {} : { max_age: auth.maxAgeSeconds }),
          },
        }),
    mode: route.mode,
    schemes,
    sender_constraint: senderConstraint,
  };
}

/**
 * The sender constraint in force on a protected route, member by member with the level it comes from: for
 * the token's issuer when the service trusts it (what deciding used), else for every issuer it trusts.
 */
function constraintSummaries(
  policy: CompiledPolicy,
  service: CompiledService,
  route: CompiledRoute,
  tokenIssuer: IssuerPolicy | undefined,
): SenderConstraintSummary[] {
  const known = tokenIssuer !== undefined && route.senderConstraints.has(tokenIssuer.issuer);
  const entries = [...route.senderConstraints].filter(([iss]) => !known || iss === tokenIssuer.issuer);
  return entries.map(([iss, constraint]) => {
    const issuer = policy.issuers.get(iss);
    const [dpop, mtls] = CONSTRAINT_MEMBERS.map((member) => ({
      value: constraint[member],
      from: constraintSource(member, route, service, issuer),
    })) as [ConstraintMemberSummary, ConstraintMemberSummary];
    return { issuer: iss, dpop, mtls };
  });
}

/** The trusted issuer the credentials name, verified or not: whose limits apply to them. */
function explainedIssuer(policy: CompiledPolicy, credentials: ExplainCredentials): IssuerPolicy | undefined {
  if (credentials.kind === 'none') return undefined;
  const { verification } = credentials;
  if (verification.kind === 'verified') return policy.issuers.get(verification.token.issuer);
  if (verification.kind === 'keys_unavailable') return policy.issuers.get(verification.issuer);
  const iss = credentials.kind === 'token' ? credentials.unverified?.iss : undefined;
  return typeof iss === 'string' ? policy.issuers.get(iss) : undefined;
}

function issuerLimits(issuer: IssuerPolicy): IssuerLimits {
  return {
    clock_tolerance: issuer.clockToleranceSeconds,
    max_token_lifetime: issuer.maxTokenLifetimeSeconds,
    jwks_max_stale: issuer.jwksMaxStaleSeconds,
    jwks_fetch_wait_ms: issuer.jwksFetchWaitMs,
  };
}

function tokenSummary(credentials: ExplainCredentials, issuer: IssuerPolicy | undefined): TokenSummary {
  if (credentials.kind === 'none') {
    return { presented: 'none', verified: false, note: 'no Authorization header' };
  }
  const { verification } = credentials;
  const given = credentials.kind === 'claims';
  const presented = given ? 'claims' : 'token';
  const limits = issuer === undefined ? {} : { limits: issuerLimits(issuer) };
  if (verification.kind === 'verified') {
    const { token } = verification;
    return {
      presented,
      verified: !given,
      note: given
        ? 'claims given, not verified: no signature, exp, nbf, iat, lifetime or aud was checked'
        : `verified with the keys of ${token.issuer} (signature, exp, nbf, iat, lifetime, aud)`,
      issuer: token.issuer,
      ...(token.subject === undefined ? {} : { sub: token.subject }),
      scopes: [...token.scopes],
      ...(token.acr === undefined ? {} : { acr: token.acr }),
      amr: [...token.amr],
      ...(token.authTime === undefined ? {} : { auth_time: token.authTime }),
      ...limits,
      binding: {
        ...(token.confirmation.jkt === undefined ? {} : { jkt: token.confirmation.jkt }),
        ...(token.confirmation.x5tS256 === undefined ? {} : { 'x5t#S256': token.confirmation.x5tS256 }),
      },
    };
  }
  const refused =
    verification.kind === 'invalid'
      ? { reason: verification.reason, description: verification.description }
      : {
          reason: 'keys_unavailable',
          description: `the keys of ${verification.issuer} could not be obtained${
            credentials.kind === 'token' && credentials.keyProblem !== undefined
              ? ` (${credentials.keyProblem})`
              : ''
          }`,
        };
  const unverified = credentials.kind === 'token' ? credentials.unverified : undefined;
  return {
    presented,
    verified: false,
    note: given ? 'claims given, not verified, and not usable' : 'the token was refused',
    refused,
    ...(unverified === undefined
      ? {}
      : {
          unverified: {
            ...(typeof unverified.iss === 'string' ? { iss: unverified.iss } : {}),
            ...(typeof unverified.sub === 'string' ? { sub: unverified.sub } : {}),
            ...(typeof unverified.exp === 'number' ? { exp: unverified.exp } : {}),
          },
        }),
    ...limits,
  };
}

function responseSummary(answer: Answer): ResponseSummary {
  if (answer.kind === 'allow') {
    return {
      kind: 'allow',
      set_headers: Object.fromEntries(answer.setHeaders),
      remove_headers: answer.removeHeaders,
    };
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of answer.headers) {
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const challenges = answer.headers.filter(([name]) => name === 'www-authenticate').map(([, value]) => value);
  return {
    kind: 'deny',
    status: answer.status,
    headers,
    ...(challenges.length === 0 ? {} : { www_authenticate: challenges }),
    body: answer.body,
  };
}

/**
 * In a policy directory every service file's paths start `services[0]`: the findings about services are
 * then those of the chosen service's own file, and the root's (which has no services) stay.
 */
function ofServiceFile(
  findings: readonly PolicyFinding[],
  service: CompiledService,
): readonly PolicyFinding[] {
  const origin = service.origin;
  if (origin === undefined) return findings;
  return findings.filter((finding) => finding.file === origin.file || !finding.path.startsWith('services'));
}
