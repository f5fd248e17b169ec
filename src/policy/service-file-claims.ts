import type { ServiceFileDocument } from './policy-document.js';
import type { Locator } from './problem-locator.js';
import type { YamlPath } from './yaml-locations.js';

/**
 * What a policy directory's service file claims that no other file may (docs/policy.md, "A policy
 * directory"): its service names (Envoy names services by them, in `context_extensions`), its hosts, and
 * the headers it maps claims to. Pure.
 */
export interface Claim {
  readonly kind: 'service' | 'host' | 'header';
  /** The name, host (lower case) or header (lower case). */
  readonly value: string;
  /** Where it is written in its file. */
  readonly path: YamlPath;
  readonly line: number;
}

export interface ServiceFileClaims {
  /** The file's path. */
  readonly file: string;
  readonly owner: string;
  readonly claims: readonly Claim[];
}

export function serviceFileClaims(
  file: string,
  document: ServiceFileDocument,
  locator: Locator,
): ServiceFileClaims {
  const claims: Claim[] = [];
  const add = (kind: Claim['kind'], value: string, path: YamlPath) =>
    claims.push({ kind, value, path, line: locator.lineOf(path) });
  document.services.forEach((service, s) => {
    add('service', service.name, ['services', s, 'name']);
    (service.hosts ?? []).forEach((host, h) => add('host', host.toLowerCase(), ['services', s, 'hosts', h]));
    for (const [claim, header] of Object.entries(service.claim_headers ?? {}))
      add('header', header.toLowerCase(), ['services', s, 'claim_headers', claim]);
  });
  return { file, owner: document.owner, claims };
}

/** Two files claiming the same thing, or a wildcard of one over an exact host of the other. */
export interface ClaimConflict {
  readonly a: Claim;
  readonly b: Claim;
}

/**
 * The conflicts between two service files: the same service name, the same host, the same claim header,
 * or a wildcard host of one over an exact host of the other (`*.x` over `a.x`, one label, as requests
 * are matched) that the root's `overlapping_wildcards` does not list.
 */
export function claimConflicts(
  a: ServiceFileClaims,
  b: ServiceFileClaims,
  overlappingWildcards: ReadonlySet<string>,
): ClaimConflict[] {
  const conflicts: ClaimConflict[] = [];
  for (const x of a.claims)
    for (const y of b.claims) {
      if (x.kind !== y.kind) continue;
      if (x.value === y.value || (x.kind === 'host' && wildcardOver(x.value, y.value, overlappingWildcards)))
        conflicts.push({ a: x, b: y });
    }
  return conflicts;
}

/** Whether one of two hosts is a wildcard over the other, with no say-so from the root. */
function wildcardOver(x: string, y: string, allowed: ReadonlySet<string>): boolean {
  const over = (wildcard: string, exact: string) =>
    wildcard.startsWith('*.') &&
    !exact.startsWith('*.') &&
    exact.indexOf('.') > 0 &&
    exact.slice(exact.indexOf('.')) === wildcard.slice(1) &&
    !allowed.has(wildcard);
  return over(x, y) || over(y, x);
}

/** One side of a conflict: `host "a.x"`. */
export function describeClaim(claim: Claim): string {
  const what = claim.kind === 'service' ? 'service' : claim.kind === 'host' ? 'host' : 'claim header';
  return `${what} "${claim.value}"`;
}
