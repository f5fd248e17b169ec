import type { CompiledPolicy, CompiledRoute, CompiledService, IssuerPolicy } from './compiled-policy.js';

/** What changed between two compiled policies, by name: each list holds display names, in file order. */
export interface PolicyChange {
  /** Routes by service and name (`GET /balance`, or `billing: GET /balance` with `services`). */
  readonly routesAdded: readonly string[];
  readonly routesRemoved: readonly string[];
  /** Same service and name, other access (public, scopes, authentication), mode, methods or sender_constraint. */
  readonly routesChanged: readonly string[];
  /** Services whose routes are the same but in another order: the first match decides, so it matters. */
  readonly routesReordered: readonly string[];
  /** Issuers by their exact `iss`. */
  readonly issuersAdded: readonly string[];
  readonly issuersRemoved: readonly string[];
  /** Same `iss`, other settings (audiences, keys, algorithms, lifetimes, caches, claim names). */
  readonly issuersChanged: readonly string[];
  /** Services by name. */
  readonly servicesAdded: readonly string[];
  readonly servicesRemoved: readonly string[];
  /** Same name, other hosts, realm, mode, trust, claim headers, public origins, sender_constraint or dpop. */
  readonly servicesChanged: readonly string[];
  /**
   * Top-level settings: `max_token_bytes`, `known_scopes`, `reload_guard`, `max_rsa_key_bits`, and the
   * replay store's `dpop.replay_cache_size`, `_per_key`, `_per_subject` and `dpop.replay_store`.
   */
  readonly settingsChanged: readonly string[];
}

/** The most items a change summary lists; the rest are counted in one last `and N more`. */
export const MAX_CHANGE_ITEMS = 20;

/**
 * Compares two policies by what they say, not by their effect (for that, `authz diff`): routes by service
 * and name, issuers and services by their settings. A route that only moved to another line is not a
 * change. Pure.
 */
export function policyChange(previous: CompiledPolicy, next: CompiledPolicy): PolicyChange {
  const labelled = (policy: CompiledPolicy) =>
    routeEntries(policy, previous.explicitServices || next.explicitServices);
  const routes = compareKeyed(labelled(previous), labelled(next));
  const issuers = compareKeyed(issuerEntries(previous), issuerEntries(next));
  const services = compareKeyed(serviceEntries(previous), serviceEntries(next));
  const routesReordered = next.services
    .filter((service) => {
      const before = previous.services.find((old) => old.name === service.name);
      if (before === undefined) return false;
      const order = (s: CompiledService) => routeKeys(s).map(([key]) => key);
      const [a, b] = [order(before), order(service)];
      return (
        a.length === b.length &&
        a.join('\n') !== b.join('\n') &&
        [...a].sort().join('\n') === [...b].sort().join('\n')
      );
    })
    .map((service) => service.name);
  const settingsChanged = [
    previous.maxTokenBytes !== next.maxTokenBytes ? 'max_token_bytes' : undefined,
    JSON.stringify(previous.knownScopes) !== JSON.stringify(next.knownScopes) ? 'known_scopes' : undefined,
    previous.reloadGuard !== next.reloadGuard ? 'reload_guard' : undefined,
    previous.dpopReplayLimits.total !== next.dpopReplayLimits.total ? 'dpop.replay_cache_size' : undefined,
    previous.dpopReplayLimits.perKey !== next.dpopReplayLimits.perKey
      ? 'dpop.replay_cache_per_key'
      : undefined,
    previous.dpopReplayLimits.perSubject !== next.dpopReplayLimits.perSubject
      ? 'dpop.replay_cache_per_subject'
      : undefined,
    JSON.stringify(previous.dpopReplayStore) !== JSON.stringify(next.dpopReplayStore)
      ? 'dpop.replay_store'
      : undefined,
    previous.maxRsaKeyBits !== next.maxRsaKeyBits ? 'max_rsa_key_bits' : undefined,
  ].filter((name): name is string => name !== undefined);
  return {
    routesAdded: routes.added,
    routesRemoved: routes.removed,
    routesChanged: routes.changed,
    routesReordered,
    issuersAdded: issuers.added,
    issuersRemoved: issuers.removed,
    issuersChanged: issuers.changed,
    servicesAdded: services.added,
    servicesRemoved: services.removed,
    servicesChanged: services.changed,
    settingsChanged,
  };
}

/**
 * A change as at most `max` short lines (`route added: GET /admin/**`), then `and N more` if some were left
 * out: bounded, so that one log line stays small whatever the edit. Empty when nothing changed.
 */
export function describePolicyChange(change: PolicyChange, max = MAX_CHANGE_ITEMS): string[] {
  const items = [
    ...change.routesAdded.map((name) => `route added: ${name}`),
    ...change.routesRemoved.map((name) => `route removed: ${name}`),
    ...change.routesChanged.map((name) => `route changed: ${name}`),
    ...change.routesReordered.map((name) => `routes reordered: ${name}`),
    ...change.servicesAdded.map((name) => `service added: ${name}`),
    ...change.servicesRemoved.map((name) => `service removed: ${name}`),
    ...change.servicesChanged.map((name) => `service changed: ${name}`),
    ...change.issuersAdded.map((name) => `issuer added: ${name}`),
    ...change.issuersRemoved.map((name) => `issuer removed: ${name}`),
    ...change.issuersChanged.map((name) => `issuer changed: ${name}`),
    ...change.settingsChanged.map((name) => `setting changed: ${name}`),
  ];
  if (items.length <= max) return items;
  return [...items.slice(0, max), `and ${items.length - max} more`];
}

/** Entries compared by key: in `next` only, in `previous` only, in both with another fingerprint. */
function compareKeyed(
  previous: readonly (readonly [string, string])[],
  next: readonly (readonly [string, string])[],
): { added: string[]; removed: string[]; changed: string[] } {
  const before = new Map(previous);
  const after = new Map(next);
  return {
    added: next.filter(([key]) => !before.has(key)).map(([key]) => key),
    removed: previous.filter(([key]) => !after.has(key)).map(([key]) => key),
    changed: next.filter(([key, print]) => before.has(key) && before.get(key) !== print).map(([key]) => key),
  };
}

/** Each route as [display key, fingerprint]; a second route of the same name in a service gets `#2`. */
function routeEntries(policy: CompiledPolicy, withService: boolean): [string, string][] {
  return policy.services.flatMap((service) =>
    routeKeys(service).map(([key, print]): [string, string] => [
      withService ? `${service.name}: ${key}` : key,
      print,
    ]),
  );
}

function routeKeys(service: CompiledService): [string, string][] {
  const seen = new Map<string, number>();
  return service.routes.map((route) => {
    const count = (seen.get(route.name) ?? 0) + 1;
    seen.set(route.name, count);
    return [count === 1 ? route.name : `${route.name} #${count}`, routeFingerprint(route)];
  });
}

function routeFingerprint(route: CompiledRoute): string {
  return JSON.stringify({
    methods: route.methods === null ? null : [...route.methods].sort(),
    pattern: route.pattern,
    mode: route.mode,
    access: route.access,
    senderConstraint: route.senderConstraint,
  });
}

function issuerEntries(policy: CompiledPolicy): [string, string][] {
  return [...policy.issuers.values()].map((issuer: IssuerPolicy) => [issuer.issuer, JSON.stringify(issuer)]);
}

function serviceEntries(policy: CompiledPolicy): [string, string][] {
  return policy.services.map((service) => [
    service.name,
    JSON.stringify({
      hosts: service.hosts,
      realm: service.realm,
      mode: service.mode,
      trust: [...service.trust].map(([iss, audiences]) => [iss, [...audiences].sort()]),
      claimHeaders: service.claimHeaders,
      publicOrigins: service.publicOrigins,
      senderConstraint: service.senderConstraint,
      dpop: service.dpop,
    }),
  ]);
}
