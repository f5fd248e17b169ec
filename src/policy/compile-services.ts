import type {
  ClaimHeader,
  CompiledRoute,
  CompiledService,
  IssuerPolicy,
  SenderConstraintSetting,
} from './compiled-policy.js';
import { IDENTITY_HEADERS } from '../contract/identity-headers.js';
import { compileDpop, DEFAULT_DPOP } from './compile-dpop.js';
import { compileRoutes } from './compile-routes.js';
import type { PathSegment, PolicyDocument, PublicOriginDocument } from './policy-document.js';
import type { DocumentLocator, Report } from './problem-locator.js';
import { proxyHeaderRole } from './proxy-headers.js';
import { normalisedOrigin } from './public-origin.js';
import { compileRouteTable } from './route-table.js';
import { SenderConstraintResolver } from './sender-constraints.js';

/**
 * The services of a policy: those it lists, or one implicit `default` service for every host built from
 * the top-level `realm`, `mode` and `routes` (the format before services, which keeps its meaning).
 */
export function compileServices(
  policy: PolicyDocument,
  issuers: ReadonlyMap<string, IssuerPolicy>,
  locator: DocumentLocator,
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
export function hostPatternProblem(host: string): string | undefined {
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (name.includes('*')) return 'may have one wildcard, as its whole first label ("*.example.com")';
  if (name.includes(':')) return "takes no port: a request's port is ignored when matching";
  if (name.endsWith('.')) return "takes no trailing dot: a request's trailing dot is ignored when matching";
  if (name.length > 253 || !HOST_NAME.test(name)) return 'is not a host name (letters, digits, "-" and ".")';
  return undefined;
}
