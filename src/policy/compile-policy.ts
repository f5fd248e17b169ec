import { dirname, resolve } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import type {
  AuthenticationRequirement,
  ClaimHeader,
  CompiledPolicy,
  CompiledService,
  DpopProofPolicy,
  ServiceSelector,
  CompiledRoute,
  EnforcementMode,
  IssuerPolicy,
  KeySource,
  ReloadGuard,
  ReplayLimits,
  RouteAccess,
  SenderConstraintSetting,
  TokenCachePolicy,
} from './compiled-policy.js';
import {
  formatDuration,
  isMillisecondsDuration,
  parseDurationMilliseconds,
  parseDurationSeconds,
} from './duration.js';
import { checkDocumentShape } from './document-shape.js';
import { fetchableUrlProblem } from './fetchable-url.js';
import { PolicyError, type PolicyProblem } from './policy-error.js';
import policySchema from './policy.schema.json' with { type: 'json' };
import { compileRoutePattern, RoutePatternError } from './route-pattern.js';
import { compileRouteTable } from './route-table.js';
import { SenderConstraintResolver, type RouteConstraints } from './sender-constraints.js';
import { normalisedOrigin } from './public-origin.js';
import { policyVersion } from './policy-version.js';
import { IDENTITY_HEADERS } from '../contract/identity-headers.js';
import { proxyHeaderRole } from './proxy-headers.js';
import { displayYamlPath, YamlLocations, type YamlPath } from './yaml-locations.js';

/** Defaults and bounds for optional policy settings, in one place. */
export const POLICY_DEFAULTS = Object.freeze({
  maxTokenBytes: 8192, // bytes
  clockToleranceSeconds: 30, // 30 seconds
  maxClockToleranceSeconds: 300, // 5 minutes
  jwksCacheTtlSeconds: 300, // 5 minutes
  minJwksCacheTtlSeconds: 10, // 10 seconds
  maxJwksCacheTtlSeconds: 86_400, // 24 hours
  jwksRefreshCooldownSeconds: 30, // 30 seconds
  minJwksRefreshCooldownSeconds: 1, // 1 second
  maxJwksRefreshCooldownSeconds: 3600, // 1 hour
  jwksMaxStaleSeconds: 86_400, // 24 hours; at least the issuer's jwks_cache_ttl
  maxJwksMaxStaleSeconds: 2_592_000, // 30 days
  jwksFetchWaitMs: 500, // 500 milliseconds, under Envoy's 1 s ext_authz timeout (envoy/envoy.yaml)
  maxJwksFetchWaitMs: 10_000, // 10 seconds
  maxTokenLifetimeSeconds: 86_400, // 24 hours
  minMaxTokenLifetimeSeconds: 60, // 1 minute
  maxMaxTokenLifetimeSeconds: 31_536_000, // 365 days
  tokenCacheMaxEntries: 10_000, // tokens per issuer
  tokenCacheTtlSeconds: 300, // 5 minutes
  minTokenCacheTtlSeconds: 1, // 1 second
  maxTokenCacheTtlSeconds: 3600, // 1 hour
  maxAgeLimitSeconds: 31_536_000, // 1 year, the largest max_age a route may set
  // DPoP proofs (RFC 9449 section 4.3; docs/sender-constraints.md). Asymmetric algorithms only, in the
  // order the DPoP challenge's algs parameter names them (section 7.1).
  dpopAlgorithms: Object.freeze([
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
    'Ed25519', // RFC 9864: the fully specified name certified clients sign with
  ]),
  dpopMaxAgeSeconds: 60, // 1 minute
  minDpopMaxAgeSeconds: 1, // 1 second
  maxDpopMaxAgeSeconds: 600, // 10 minutes
  dpopClockToleranceSeconds: 10, // 10 seconds, FAPI 2.0's clock-offset allowance
  maxDpopClockToleranceSeconds: 60, // 1 minute
  dpopNonceLifetimeSeconds: 60, // 1 minute
  minDpopNonceLifetimeSeconds: 10, // 10 seconds
  maxDpopNonceLifetimeSeconds: 600, // 10 minutes
  dpopReplayCacheSize: 100_000, // proof jti values per process (the schema bounds it: 1000 to 10,000,000)
  // The share one proof key, and one user's keys together, may hold of it by default: one client flooding
  // with valid proofs is refused (429) long before everyone else's proofs could be.
  dpopReplayShareOfKey: 0.02, // 2%: 2000 of 100,000, some 28 proofs a second for a 70 s window
  dpopReplayShareOfSubject: 0.05, // 5%
  maxRsaKeyBits: 4096, // bits (2048 to 8192; RSA_KEY_LIMITS)
  claims: Object.freeze({
    scopes: Object.freeze(['scope', 'scp']),
    acr: 'acr',
    amr: 'amr',
    authTime: 'auth_time',
  }),
});

// Compiled once per process: the schema is static.
const validateSchema = new Ajv2020({
  allErrors: true,
  verbose: true, // keeps parentSchema on each error, to list the allowed keys
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
}).compile(policySchema);

/** The policy as the schema guarantees it, before semantic checks. */
interface PolicyDocument {
  version: 1;
  realm?: string;
  mode?: EnforcementMode;
  reload_guard?: ReloadGuard;
  max_token_bytes?: number;
  max_rsa_key_bits?: number;
  known_scopes?: string[];
  public_origin?: PublicOriginDocument;
  sender_constraint?: SenderConstraintSetting;
  dpop?: DpopDocument & {
    replay_cache_size?: number;
    replay_cache_per_key?: number;
    replay_cache_per_subject?: number;
  };
  issuers: {
    issuer: string;
    audiences: string[];
    jwks_uri?: string;
    jwks_file?: string;
    discovery?: true;
    openid_configuration?: string;
    algorithms: string[];
    claims?: { scopes?: string[]; acr?: string; amr?: string; auth_time?: string };
    require_typ?: string;
    require_sub?: boolean;
    clock_tolerance?: number | string;
    jwks_cache_ttl?: number | string;
    jwks_refresh_cooldown?: number | string;
    jwks_max_stale?: number | string;
    jwks_fetch_wait?: number | string;
    max_token_lifetime?: number | string;
    token_cache?: { max_entries?: number; ttl?: number | string };
    sender_constraint?: SenderConstraintSetting;
  }[];
  routes?: RouteDocument[];
  services?: {
    name: string;
    hosts?: string[];
    realm?: string;
    mode?: EnforcementMode;
    issuers?: { issuer: string; audiences?: string[] }[];
    claim_headers?: Record<string, string>;
    public_origin?: PublicOriginDocument;
    sender_constraint?: SenderConstraintSetting;
    dpop?: DpopDocument;
    routes: RouteDocument[];
  }[];
}

type PublicOriginDocument = string | string[];

interface DpopDocument {
  algorithms?: string[];
  max_age?: number | string;
  clock_tolerance?: number | string;
  nonce?: 'off' | 'required';
  nonce_lifetime?: number | string;
}

interface RouteDocument {
  methods?: string[];
  path: string;
  scopes?: string[];
  public?: boolean;
  mode?: EnforcementMode;
  authentication?: { acr_values?: string[]; amr?: string[]; max_age?: number | string };
  accept_risks?: { code: string; reason: string }[];
  sender_constraint?: SenderConstraintSetting;
}

type PathSegment = string | number;

/**
 * Parses, validates and compiles policy text. Pure: reads no files (a `jwks_file` is resolved against
 * `file`'s folder but not opened; see `loadPolicy`).
 *
 * @param text the YAML source.
 * @param file the file name used in error messages and to resolve relative paths.
 * @throws PolicyError with every problem found, each with line, column and document path.
 */
export function compilePolicy(text: string, file: string): CompiledPolicy {
  const locations = new YamlLocations(text);
  const doc = locations.document;
  const locator = new Locator(file, locations);

  if (doc.errors.length > 0) {
    throw new PolicyError(
      'ERR_POLICY_SYNTAX',
      doc.errors.map((error) => locator.atOffset(error.pos[0], `YAML syntax: ${firstLine(error.message)}`)),
    );
  }
  checkDocumentShape(locations, file); // empty, not a mapping, merge keys: before the schema's terser words
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }); // bounds alias expansion ("billion laughs")
  } catch (error) {
    throw new PolicyError('ERR_POLICY_SYNTAX', [
      locator.atOffset(0, `YAML: ${firstLine((error as Error).message)}`),
    ]);
  }
  if (!validateSchema(data)) {
    throw new PolicyError('ERR_POLICY_INVALID', schemaProblems(validateSchema.errors ?? [], locator));
  }
  const policy = data as unknown as PolicyDocument;
  const problems: PolicyProblem[] = [];
  const report = (path: PathSegment[], message: string): void => {
    problems.push(locator.at(path, message));
  };

  const headerClaims = [
    ...new Set((policy.services ?? []).flatMap((service) => Object.keys(service.claim_headers ?? {}))),
  ].sort();
  const maxRsaKeyBits = policy.max_rsa_key_bits ?? POLICY_DEFAULTS.maxRsaKeyBits;
  const declared = new Map<string, IssuerPolicy>();
  policy.issuers.forEach((entry, i) => {
    const issuer = compileIssuer(entry, ['issuers', i], dirname(file), headerClaims, maxRsaKeyBits, report);
    if (issuer === undefined) return;
    if (declared.has(issuer.issuer))
      report(['issuers', i, 'issuer'], `issuer "${issuer.issuer}" is listed twice`);
    declared.set(issuer.issuer, issuer);
  });

  const services = compileServices(policy, declared, locator, report);
  // jwtVerify checks a token's aud against every audience any service accepts from its issuer; each
  // service then checks its own (CompiledService.trust), per request.
  const issuers = new Map<string, IssuerPolicy>();
  for (const [iss, issuer] of declared) {
    const audiences = new Set(issuer.audiences);
    for (const service of services)
      for (const audience of service.trust.get(iss) ?? []) audiences.add(audience);
    issuers.set(
      iss,
      audiences.size === issuer.audiences.length
        ? issuer
        : Object.freeze({ ...issuer, audiences: Object.freeze([...audiences]) }),
    );
  }

  const dpopReplayLimits = compileReplayLimits(policy.dpop, report);
  if (problems.length > 0) throw new PolicyError('ERR_POLICY_INVALID', problems);
  return Object.freeze({
    version: policyVersion(text),
    source: file,
    maxTokenBytes: policy.max_token_bytes ?? POLICY_DEFAULTS.maxTokenBytes,
    issuers,
    services: Object.freeze(services),
    explicitServices: policy.services !== undefined,
    serviceSelector: createServiceSelector(services),
    knownScopes: policy.known_scopes === undefined ? undefined : Object.freeze([...policy.known_scopes]),
    reloadGuard: policy.reload_guard ?? 'error',
    dpopReplayLimits,
    maxRsaKeyBits,
  });
}

/**
 * The replay store's limits (top-level `dpop`): its size, and the share of it one key and one user may
 * hold, each at most the size. Shares default to a fraction of the size, at least 1.
 */
function compileReplayLimits(dpop: PolicyDocument['dpop'], report: Report): ReplayLimits {
  const d = POLICY_DEFAULTS;
  const total = dpop?.replay_cache_size ?? d.dpopReplayCacheSize;
  const share = (key: 'replay_cache_per_key' | 'replay_cache_per_subject', fraction: number): number => {
    const value = dpop?.[key];
    if (value === undefined) return Math.max(1, Math.floor(total * fraction));
    if (value > total) {
      report(['dpop', key], `must be at most dpop.replay_cache_size (${total})`);
      return total;
    }
    return value;
  };
  return Object.freeze({
    total,
    perKey: share('replay_cache_per_key', d.dpopReplayShareOfKey),
    perSubject: share('replay_cache_per_subject', d.dpopReplayShareOfSubject),
  });
}

/**
 * The services of a policy: those it lists, or one implicit `default` service for every host built from
 * the top-level `realm`, `mode` and `routes` (the format before services, which keeps its meaning).
 */
function compileServices(
  policy: PolicyDocument,
  issuers: ReadonlyMap<string, IssuerPolicy>,
  locator: Locator,
  report: Report,
): CompiledService[] {
  const everyIssuer = () =>
    new Map([...issuers].map(([iss, issuer]) => [iss, Object.freeze(new Set(issuer.audiences))] as const));
  // The top level's sender-constraint keys: the implicit service's own, or each service's defaults.
  const topOrigins = compilePublicOrigins(policy.public_origin, ['public_origin'], report);
  const topConstraint: SenderConstraintSetting = Object.freeze({ ...policy.sender_constraint });
  const topDpop = compileDpop(policy.dpop, ['dpop'], DEFAULT_DPOP, report);
  const resolver = new SenderConstraintResolver();
  const trustedIssuers = (trust: ReadonlyMap<string, unknown>) =>
    [...trust.keys()].flatMap((iss) => issuers.get(iss) ?? []);
  if (policy.services === undefined) {
    if (policy.routes === undefined) {
      report([], 'missing required key "routes"');
    }
    if (policy.realm === undefined) report([], 'missing required key "realm"');
    const mode = policy.mode ?? 'enforce';
    const trust = everyIssuer();
    const constraints = resolver.forService(trustedIssuers(trust), topConstraint);
    const routes = compileRoutes(policy.routes ?? [], ['routes'], mode, constraints, locator, report);
    checkDpopOrigin(IMPLICIT_SERVICE, topOrigins, routes, ['routes'], report);
    return [
      Object.freeze({
        name: IMPLICIT_SERVICE,
        line: locator.lineOf(['routes']),
        routesPath: Object.freeze(['routes']),
        hosts: null,
        realm: policy.realm ?? '',
        mode,
        routes: Object.freeze(routes),
        routeTable: compileRouteTable(routes),
        trust,
        claimHeaders: Object.freeze([]),
        foreignClaimHeaders: Object.freeze([]),
        publicOrigins: topOrigins,
        senderConstraint: topConstraint,
        dpop: topDpop,
      }),
    ];
  }
  if (policy.routes !== undefined) {
    report(['routes'], 'with "services", each service lists its own routes: move these under a service');
  }
  const names = new Set<string>();
  // Every header any service maps a claim to: each service's answers remove those it does not set.
  const everyClaimHeader = [
    ...new Set(policy.services.flatMap((entry) => Object.values(entry.claim_headers ?? {}))),
  ].sort();
  return policy.services.map((entry, s) => {
    const at: PathSegment[] = ['services', s];
    if (names.has(entry.name)) report([...at, 'name'], `service "${entry.name}" is listed twice`);
    names.add(entry.name);
    const hosts: string[] = [];
    (entry.hosts ?? []).forEach((host, h) => {
      const problem = hostPatternProblem(host);
      if (problem === undefined) hosts.push(host.toLowerCase());
      else report([...at, 'hosts', h], `host "${host}" ${problem}`);
    });
    const realm = entry.realm ?? policy.realm;
    if (realm === undefined) {
      report(
        [...at],
        `service "${entry.name}" needs a "realm" (or set one at the top level for every service)`,
      );
    }
    let trust = everyIssuer();
    if (entry.issuers !== undefined) {
      trust = new Map();
      entry.issuers.forEach((trusted, i) => {
        const issuer = issuers.get(trusted.issuer);
        if (issuer === undefined) {
          report(
            [...at, 'issuers', i, 'issuer'],
            `"${trusted.issuer}" is not one of the top-level issuers: list it under "issuers" first`,
          );
          return;
        }
        if (trust.has(trusted.issuer)) {
          report([...at, 'issuers', i, 'issuer'], `issuer "${trusted.issuer}" is listed twice`);
        }
        trust.set(trusted.issuer, Object.freeze(new Set(trusted.audiences ?? issuer.audiences)));
      });
    }
    const claimHeaders: ClaimHeader[] = [];
    for (const [claim, header] of Object.entries(entry.claim_headers ?? {})) {
      const role = proxyHeaderRole(header);
      if (RESERVED_HEADERS.has(header)) {
        report(
          [...at, 'claim_headers', claim],
          `"${header}" is set by the sidecar itself: choose another header for the ${claim} claim`,
        );
      } else if (role !== undefined) {
        report(
          [...at, 'claim_headers', claim],
          `"${header}" is not for claims: ${role}. Choose a header of your own for the ${claim} claim (e.g. x-${
            claim
              .toLowerCase()
              .replace(/[^a-z0-9]+/g, '-')
              .replace(/^-|-$/g, '') || 'claim'
          })`,
        );
      } else if (claimHeaders.some((taken) => taken.header === header)) {
        report([...at, 'claim_headers', claim], `header "${header}" is given two claims`);
      } else {
        claimHeaders.push(Object.freeze({ claim, header }));
      }
    }
    const mode = entry.mode ?? policy.mode ?? 'enforce';
    const publicOrigins =
      entry.public_origin === undefined
        ? topOrigins
        : compilePublicOrigins(entry.public_origin, [...at, 'public_origin'], report);
    // Each member, and each dpop key, the service sets overrides the top level's.
    const senderConstraint: SenderConstraintSetting = Object.freeze({
      ...topConstraint,
      ...entry.sender_constraint,
    });
    const dpop = compileDpop(entry.dpop, [...at, 'dpop'], topDpop, report);
    const constraints = resolver.forService(trustedIssuers(trust), senderConstraint);
    const routes = compileRoutes(entry.routes, [...at, 'routes'], mode, constraints, locator, report);
    checkDpopOrigin(entry.name, publicOrigins, routes, [...at, 'routes'], report);
    return Object.freeze({
      name: entry.name,
      line: locator.lineOf(at),
      routesPath: Object.freeze([...at, 'routes']),
      hosts: Object.freeze(hosts),
      realm: realm ?? '',
      mode,
      routes: Object.freeze(routes),
      routeTable: compileRouteTable(routes),
      trust,
      claimHeaders: Object.freeze(claimHeaders),
      foreignClaimHeaders: Object.freeze(
        everyClaimHeader.filter((header) => !claimHeaders.some((own) => own.header === header)),
      ),
      publicOrigins,
      senderConstraint,
      dpop,
    });
  });
}

/** The defaults of `dpop` (docs/sender-constraints.md), under the top level's settings. */
const DEFAULT_DPOP: DpopProofPolicy = Object.freeze({
  algorithms: POLICY_DEFAULTS.dpopAlgorithms,
  maxAgeSeconds: POLICY_DEFAULTS.dpopMaxAgeSeconds,
  clockToleranceSeconds: POLICY_DEFAULTS.dpopClockToleranceSeconds,
  nonce: 'off',
  nonceLifetimeSeconds: POLICY_DEFAULTS.dpopNonceLifetimeSeconds,
});

/** `public_origin` (one origin or a list) normalised; each entry that is not an origin is reported. */
function compilePublicOrigins(
  value: PublicOriginDocument | undefined,
  at: PathSegment[],
  report: Report,
): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  const list = typeof value === 'string' ? [value] : value;
  const origins: string[] = [];
  const written = new Map<string, string>();
  list.forEach((text, i) => {
    const path = typeof value === 'string' ? at : [...at, i];
    const result = normalisedOrigin(text);
    if ('problem' in result) {
      report(path, result.problem);
      return;
    }
    const first = written.get(result.origin);
    if (first !== undefined) {
      report(path, `"${text}" is the same origin as "${first}" (${result.origin}): list it once`);
      return;
    }
    written.set(result.origin, text);
    origins.push(result.origin);
  });
  return Object.freeze(origins);
}

/**
 * `dpop` at one level over the level above (the defaults, or the top level's): each key it sets wins. A
 * duration out of its range is reported where it is written.
 */
function compileDpop(
  entry: DpopDocument | undefined,
  at: PathSegment[],
  above: DpopProofPolicy,
  report: Report,
): DpopProofPolicy {
  if (entry === undefined) return above;
  const d = POLICY_DEFAULTS;
  const duration = (key: string, value: unknown, fallback: number, min: number, max: number): number => {
    if (value === undefined) return fallback;
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined || seconds < min || seconds > max) {
      report(
        [...at, key],
        `must be a duration from ${formatDuration(min)} to ${formatDuration(max)} (whole seconds, or 30s / 5m)`,
      );
      return fallback;
    }
    return seconds;
  };
  return Object.freeze({
    algorithms: entry.algorithms === undefined ? above.algorithms : Object.freeze([...entry.algorithms]),
    maxAgeSeconds: duration(
      'max_age',
      entry.max_age,
      above.maxAgeSeconds,
      d.minDpopMaxAgeSeconds,
      d.maxDpopMaxAgeSeconds,
    ),
    clockToleranceSeconds: duration(
      'clock_tolerance',
      entry.clock_tolerance,
      above.clockToleranceSeconds,
      0,
      d.maxDpopClockToleranceSeconds,
    ),
    nonce: entry.nonce ?? above.nonce,
    nonceLifetimeSeconds: duration(
      'nonce_lifetime',
      entry.nonce_lifetime,
      above.nonceLifetimeSeconds,
      d.minDpopNonceLifetimeSeconds,
      d.maxDpopNonceLifetimeSeconds,
    ),
  });
}

/**
 * A service on which DPoP may be used needs `public_origin`: a proof's `htu` is compared with it plus the
 * path (RFC 9449 section 4.3), never with what the client says its Host is. Reported at the first route
 * that accepts DPoP.
 */
function checkDpopOrigin(
  name: string,
  origins: readonly string[],
  routes: readonly CompiledRoute[],
  routesPath: PathSegment[],
  report: Report,
): void {
  if (origins.length > 0) return;
  const route = routes.find((r) => r.schemes.dpop);
  if (route === undefined) return;
  report(
    [...routesPath, route.index],
    `service "${name}" accepts DPoP proofs (sender_constraint) on route ${route.name} but has no public_origin: ` +
      `a proof's htu cannot be checked (set public_origin${name === IMPLICIT_SERVICE ? ' at the top level' : ' on the service or at the top level'})`,
  );
}

/** The name of the one service of a policy without `services`. */
export const IMPLICIT_SERVICE = 'default';

/** Headers a claim may not be mapped to: the identity headers, which the sidecar sets itself. */
const RESERVED_HEADERS: ReadonlySet<string> = new Set(Object.values(IDENTITY_HEADERS));

const HOST_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_NAME = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`, 'i');

/** What is wrong with a `hosts` entry, or undefined: a DNS name, or `*.` and one (RFC 1123 labels). */
function hostPatternProblem(host: string): string | undefined {
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (name.includes('*')) return 'may have one wildcard, as its whole first label ("*.example.com")';
  if (name.includes(':')) return "takes no port: a request's port is ignored when matching";
  if (name.endsWith('.')) return "takes no trailing dot: a request's trailing dot is ignored when matching";
  if (name.length > 253 || !HOST_NAME.test(name)) return 'is not a host name (letters, digits, "-" and ".")';
  return undefined;
}

function compileRoutes(
  entries: readonly RouteDocument[],
  at: PathSegment[],
  defaultMode: EnforcementMode,
  constraints: RouteConstraintsOf,
  locator: Locator,
  report: Report,
): CompiledRoute[] {
  const routes: CompiledRoute[] = [];
  entries.forEach((entry, i) => {
    const line = locator.lineOf([...at, i]);
    const route = compileRoute(entry, [...at, i], i, line, defaultMode, constraints, report);
    if (route !== undefined) routes.push(route);
  });
  return routes;
}

/** Finds a request's service: by name, or by host (exact, then one wildcard label), else the implicit one. */
function createServiceSelector(services: readonly CompiledService[]): ServiceSelector {
  const byName = new Map<string, CompiledService>();
  const byHost = new Map<string, CompiledService>();
  let everyHost: CompiledService | undefined;
  for (const service of services) {
    if (!byName.has(service.name)) byName.set(service.name, service);
    if (service.hosts === null) everyHost ??= service;
    // The first service in file order claiming a host keeps it (check-policy warns about the others).
    for (const host of service.hosts ?? []) if (!byHost.has(host)) byHost.set(host, service);
  }
  return Object.freeze({
    byName: (name: string) => byName.get(name),
    forHost: (host: string | undefined) => {
      if (host !== undefined) {
        const exact = byHost.get(host);
        if (exact !== undefined) return exact;
        const dot = host.indexOf('.');
        if (dot > 0) {
          const wildcard = byHost.get(`*${host.slice(dot)}`);
          if (wildcard !== undefined) return wildcard;
        }
      }
      return everyHost;
    },
  });
}

type Report = (path: PathSegment[], message: string) => void;

/** The constraints of a route of one service, from the route's own `sender_constraint`. */
type RouteConstraintsOf = (route: SenderConstraintSetting, isPublic: boolean) => RouteConstraints;

function compileIssuer(
  entry: PolicyDocument['issuers'][number],
  at: PathSegment[],
  baseDir: string,
  headerClaims: readonly string[],
  maxRsaKeyBits: number,
  report: Report,
): IssuerPolicy | undefined {
  let keys: KeySource | undefined;
  if (entry.jwks_uri !== undefined) {
    const problem = fetchableUrlProblem(entry.jwks_uri);
    if (problem === undefined) keys = { kind: 'uri', uri: new URL(entry.jwks_uri) };
    else report([...at, 'jwks_uri'], problem);
  } else if (entry.jwks_file !== undefined) {
    keys = { kind: 'file', path: resolve(baseDir, entry.jwks_file) };
  } else if (entry.openid_configuration !== undefined) {
    const problem = fetchableUrlProblem(entry.openid_configuration);
    if (problem === undefined) {
      keys = { kind: 'discovery', metadataUrl: new URL(entry.openid_configuration), issuer: entry.issuer };
    } else {
      report([...at, 'openid_configuration'], problem);
    }
  } else if (entry.discovery === true) {
    // OpenID Connect Discovery 1.0 section 4: the issuer, less a trailing slash, + /.well-known/openid-configuration.
    const url = `${entry.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    // An issuer identifier has no query or fragment (OIDC Discovery 1.0 section 2, RFC 8414 section 2).
    const problem = /[?#]/.test(entry.issuer)
      ? 'an issuer has no query or fragment'
      : fetchableUrlProblem(url);
    if (problem === undefined) keys = { kind: 'discovery', metadataUrl: new URL(url), issuer: entry.issuer };
    else
      report([...at, 'discovery'], `discovery needs the issuer to be a URL that can be fetched: ${problem}`);
  }
  const refused = new Set<string>(); // the settings refused below, by their key
  const duration = (
    key: PathSegment | PathSegment[],
    value: unknown,
    fallback: number,
    min: number,
    max: number,
    range = `from ${formatDuration(min)} to ${formatDuration(max)}`,
  ) => {
    if (value === undefined) return fallback;
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined || seconds < min || seconds > max) {
      const path = Array.isArray(key) ? key : [key];
      report([...at, ...path], `must be a duration ${range} (whole seconds, or 30s / 5m / 1h)`);
      refused.add(path.join('.'));
      return fallback;
    }
    return seconds;
  };
  const d = POLICY_DEFAULTS;
  // On by default; `max_entries: 0` turns it off (the schema bounds the count). The TTL is checked either way.
  const cacheTtlSeconds = duration(
    ['token_cache', 'ttl'],
    entry.token_cache?.ttl,
    d.tokenCacheTtlSeconds,
    d.minTokenCacheTtlSeconds,
    d.maxTokenCacheTtlSeconds,
  );
  const cacheEntries = entry.token_cache?.max_entries ?? d.tokenCacheMaxEntries;
  const jwksCacheTtlSeconds = duration(
    'jwks_cache_ttl',
    entry.jwks_cache_ttl,
    d.jwksCacheTtlSeconds,
    d.minJwksCacheTtlSeconds,
    d.maxJwksCacheTtlSeconds,
  );
  const jwksMaxStaleSeconds = duration(
    'jwks_max_stale',
    entry.jwks_max_stale,
    d.jwksMaxStaleSeconds,
    0,
    d.maxJwksMaxStaleSeconds,
    `of at most ${formatDuration(d.maxJwksMaxStaleSeconds)}, and at least jwks_cache_ttl`,
  );
  // Keys may not go stale before they would be refreshed: a bound below the TTL would drop fresh keys.
  // The default bound is never below the largest TTL; a refused setting has been reported already.
  if (
    jwksMaxStaleSeconds < jwksCacheTtlSeconds &&
    !refused.has('jwks_max_stale') &&
    !refused.has('jwks_cache_ttl')
  ) {
    report(
      [...at, 'jwks_max_stale'],
      `jwks_max_stale (${formatDuration(jwksMaxStaleSeconds)}) must be at least jwks_cache_ttl (${formatDuration(jwksCacheTtlSeconds)})`,
    );
  }
  let jwksFetchWaitMs: number = d.jwksFetchWaitMs;
  if (entry.jwks_fetch_wait !== undefined) {
    const ms = parseDurationMilliseconds(entry.jwks_fetch_wait);
    if (ms === undefined || ms > d.maxJwksFetchWaitMs) {
      report(
        [...at, 'jwks_fetch_wait'],
        `must be a duration from 0ms to ${formatDuration(d.maxJwksFetchWaitMs, true)} (800ms, whole seconds, or 1s)`,
      );
    } else {
      jwksFetchWaitMs = ms;
    }
  }
  const tokenCache: TokenCachePolicy | undefined =
    cacheEntries === 0 ? undefined : { maxEntries: cacheEntries, ttlSeconds: cacheTtlSeconds };
  const issuer: IssuerPolicy = {
    issuer: entry.issuer,
    audiences: Object.freeze([...entry.audiences]),
    algorithms: Object.freeze([...entry.algorithms]),
    keys: keys ?? { kind: 'file', path: '' },
    clockToleranceSeconds: duration(
      'clock_tolerance',
      entry.clock_tolerance,
      d.clockToleranceSeconds,
      0,
      d.maxClockToleranceSeconds,
    ),
    jwksCacheTtlSeconds,
    jwksRefreshCooldownSeconds: duration(
      'jwks_refresh_cooldown',
      entry.jwks_refresh_cooldown,
      d.jwksRefreshCooldownSeconds,
      d.minJwksRefreshCooldownSeconds,
      d.maxJwksRefreshCooldownSeconds,
    ),
    jwksMaxStaleSeconds,
    jwksFetchWaitMs,
    maxTokenLifetimeSeconds: duration(
      'max_token_lifetime',
      entry.max_token_lifetime,
      d.maxTokenLifetimeSeconds,
      d.minMaxTokenLifetimeSeconds,
      d.maxMaxTokenLifetimeSeconds,
    ),
    claims: Object.freeze({
      scopes: Object.freeze([...(entry.claims?.scopes ?? d.claims.scopes)]),
      acr: entry.claims?.acr ?? d.claims.acr,
      amr: entry.claims?.amr ?? d.claims.amr,
      authTime: entry.claims?.auth_time ?? d.claims.authTime,
    }),
    requiredTyp: entry.require_typ,
    requireSubject: entry.require_sub ?? true,
    maxRsaKeyBits,
    headerClaims: Object.freeze([...headerClaims]),
    tokenCache: tokenCache === undefined ? undefined : Object.freeze(tokenCache),
    senderConstraint: Object.freeze({ ...entry.sender_constraint }),
  };
  return keys === undefined ? undefined : Object.freeze(issuer);
}

function compileRoute(
  entry: RouteDocument,
  at: PathSegment[],
  index: number,
  line: number,
  defaultMode: EnforcementMode,
  constraints: RouteConstraintsOf,
  report: Report,
): CompiledRoute | undefined {
  let ok = true;

  entry.methods?.forEach((method, m) => {
    if (method !== method.toUpperCase()) {
      report([...at, 'methods', m], `HTTP methods are case-sensitive: write "${method.toUpperCase()}"`);
      ok = false;
    }
  });

  let matchesPath: ((path: string) => boolean) | undefined;
  try {
    matchesPath = compileRoutePattern(entry.path);
  } catch (error) {
    if (!(error instanceof RoutePatternError)) throw error;
    report([...at, 'path'], `path pattern "${entry.path}": ${error.message}`);
    ok = false;
  }

  let access: RouteAccess | undefined;
  if (entry.public === true && entry.scopes !== undefined) {
    report([...at, 'scopes'], 'a public route takes no scopes: remove "scopes" or "public: true"');
  } else if (entry.public === true && entry.authentication !== undefined) {
    report([...at, 'authentication'], 'a public route takes no authentication requirements');
  } else if (entry.public === true && entry.sender_constraint !== undefined) {
    report(
      [...at, 'sender_constraint'],
      'a public route takes no sender_constraint: no token is read on it, so there is nothing to bind',
    );
  } else if (entry.public === true) {
    access = { kind: 'public' };
  } else if (entry.scopes !== undefined) {
    const authentication = compileAuthentication(entry.authentication, [...at, 'authentication'], report);
    access =
      authentication === undefined
        ? { kind: 'protected', scopes: Object.freeze([...entry.scopes]) }
        : { kind: 'protected', scopes: Object.freeze([...entry.scopes]), authentication };
  } else {
    report(
      at,
      'say what the route requires: "scopes: [...]" (an empty list: any valid token) or "public: true"',
    );
  }

  // The accepted findings themselves are read by policyFindings; here only what the schema cannot say.
  const accepted = new Set<string>();
  entry.accept_risks?.forEach(({ code, reason }, k) => {
    if (accepted.has(code)) report([...at, 'accept_risks', k, 'code'], `${code} is accepted twice`);
    accepted.add(code);
    if (reason.trim().length < 10)
      report([...at, 'accept_risks', k, 'reason'], 'say why the risk is accepted, in at least 10 characters');
  });

  if (!ok || matchesPath === undefined || access === undefined) return undefined;
  const methods = entry.methods === undefined ? null : new Set(entry.methods);
  const senderConstraint: SenderConstraintSetting = Object.freeze({ ...entry.sender_constraint });
  const { senderConstraints, schemes } = constraints(senderConstraint, access.kind === 'public');
  return Object.freeze({
    index,
    line,
    methods,
    pattern: entry.path,
    mode: entry.mode ?? defaultMode,
    name: `${entry.methods?.join(',') ?? '*'} ${entry.path}`,
    matchesPath,
    access,
    senderConstraint,
    senderConstraints,
    schemes,
  });
}

function compileAuthentication(
  entry: RouteDocument['authentication'],
  at: PathSegment[],
  report: Report,
): AuthenticationRequirement | undefined {
  if (entry === undefined) return undefined;
  const requirement: { -readonly [K in keyof AuthenticationRequirement]: AuthenticationRequirement[K] } = {};
  if (entry.acr_values !== undefined) requirement.acrValues = Object.freeze([...entry.acr_values]);
  if (entry.amr !== undefined) requirement.amr = Object.freeze([...entry.amr]);
  if (entry.max_age !== undefined) {
    const seconds = parseDurationSeconds(entry.max_age);
    if (seconds === undefined || seconds > POLICY_DEFAULTS.maxAgeLimitSeconds) {
      report([...at, 'max_age'], 'must be a duration of at most a year (whole seconds, or 30s / 5m / 1h)');
    } else {
      requirement.maxAgeSeconds = seconds;
    }
  }
  return Object.freeze(requirement);
}

/** Turns schema errors into one clear problem per place, located in the file. */
function schemaProblems(errors: readonly ErrorObject[], locator: Locator): PolicyProblem[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const seen = new Set<string>();
  const problems: PolicyProblem[] = [];
  for (const error of errors) {
    const path = pointerToPath(error.instancePath);
    // Errors inside the branches of a failed oneOf are noise; the oneOf error itself says what to do.
    if (oneOfPaths.has(error.instancePath) && error.schemaPath.includes('/oneOf/')) continue;
    let target = path;
    let message: string;
    switch (error.keyword) {
      case 'additionalProperties': {
        const key = String(error.params['additionalProperty']);
        const allowed = Object.keys((error.parentSchema as { properties?: object }).properties ?? {});
        target = [...path, key];
        message =
          key.startsWith('replay_cache_') && path.at(-1) === 'dpop'
            ? // One replay store per process, shared by every service: a per-service limit would mislead.
              `${key} is per process, for every service: set it in the top-level dpop`
            : `unknown key "${key}" (allowed: ${allowed.join(', ')})`;
        break;
      }
      case 'required':
        message = `missing required key "${String(error.params['missingProperty'])}"`;
        break;
      case 'oneOf':
        message = oneOfMessage(path, error.data);
        break;
      case 'const':
        message = `must be ${JSON.stringify(error.params['allowedValue'])}`;
        break;
      case 'enum':
        message = `must be one of: ${(error.params['allowedValues'] as unknown[]).join(', ')}`;
        break;
      case 'pattern':
        message = patternMessage(path);
        break;
      case 'uniqueItems':
        message = 'lists the same value twice';
        break;
      default:
        message = error.message ?? 'is not valid';
    }
    const key = `${target.join('.')}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(locator.at(target, message));
  }
  return problems;
}

function oneOfMessage(path: PathSegment[], value: unknown): string {
  if (path[0] === 'issuers' && path.length === 2)
    return 'give exactly one of "jwks_uri", "jwks_file", "discovery: true" or "openid_configuration"';
  if (path.at(-1) === 'public_origin')
    return 'must be an origin (https://bank.example) or a non-empty list of origins';
  if (path.at(-1) === 'jwks_fetch_wait')
    return 'must be a duration: milliseconds (800ms), whole seconds (1) or a number with a unit (1s)';
  // Only jwks_fetch_wait takes ms; say so rather than only that the form is wrong.
  if (isMillisecondsDuration(value))
    return 'takes whole seconds at the finest (30, 30s, 5m, 1h): "ms" is accepted by jwks_fetch_wait only';
  return 'must be a duration: whole seconds (30) or a number with a unit (30s, 5m, 1h)';
}

function patternMessage(path: PathSegment[]): string {
  // A service's routes, realm and claim headers sit under services[N]: judge them by what follows.
  const within = path[0] === 'services' && typeof path[1] === 'number' ? path.slice(2) : path;
  if (within[0] === 'routes' && within.includes('methods')) return 'is not an HTTP method name';
  if ((within[0] === 'routes' && within.includes('scopes')) || within[0] === 'known_scopes')
    return 'is not a scope token (RFC 6749 section 3.3: no spaces, quotes or backslashes)';
  if (within[0] === 'realm') return 'may hold printable ASCII only, without quotes or backslashes';
  if (path[0] === 'services' && within[0] === 'name') {
    return 'is not a service name (lower-case letters, digits and "-", at most 64)';
  }
  if (path[0] === 'services' && within[0] === 'claim_headers') {
    return 'is not a header for a claim (lower case, starting with "x-": x-auth-email)';
  }
  return 'has an unexpected form';
}

function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/** Turns document paths and offsets into located problems in this file. */
class Locator {
  constructor(
    private readonly file: string,
    private readonly locations: YamlLocations,
  ) {}

  at(path: YamlPath, message: string): PolicyProblem {
    return { file: this.file, ...this.locations.positionOf(path), path: displayYamlPath(path), message };
  }

  atOffset(offset: number, message: string): PolicyProblem {
    return { file: this.file, ...this.locations.positionOfOffset(offset), path: '', message };
  }

  lineOf(path: YamlPath): number {
    return this.locations.positionOf(path).line;
  }
}
