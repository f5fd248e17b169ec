import type { CompiledPolicy, IssuerPolicy } from '../policy/compiled-policy.js';
import { IssuerKeys, type KeySetFetchEvent } from './issuer-keys.js';
import type { FetchKeySet } from './read-key-set.js';

/** The keys of every issuer a policy trusts. */
export interface KeyRing {
  /** Keys for an issuer the policy trusts, by exact `iss`. */
  keysFor(issuer: string): IssuerKeys | undefined;
  /** Fetches every issuer's keys once; resolves when all attempts have ended. Never throws. */
  prefetch(): Promise<void>;
  /** Whether every issuer's keys have been obtained. */
  readonly ready: boolean;
}

export interface KeyRingDependencies {
  readonly fetchKeySet: FetchKeySet;
  readonly now: () => number;
  readonly onFetch?: (event: KeySetFetchEvent) => void;
}

/**
 * Builds the key ring for a policy's issuers. Nothing is fetched until `prefetch` or first use. With
 * `previous` (a policy reload), an issuer whose key source and cache settings are unchanged keeps its
 * cached keys, so a reload causes no refetch storm and no 503 window.
 */
export function createKeyRing(
  policy: CompiledPolicy,
  deps: KeyRingDependencies,
  previous?: KeyRing,
): KeyRing {
  const byIssuer = new Map<string, IssuerKeys>();
  for (const issuer of policy.issuers.values()) {
    const kept = previous?.keysFor(issuer.issuer);
    byIssuer.set(
      issuer.issuer,
      kept !== undefined && sameKeySettings(kept.issuer, issuer) ? kept : new IssuerKeys({ issuer, ...deps }),
    );
  }
  return {
    keysFor: (issuer) => byIssuer.get(issuer),
    prefetch: async () => {
      await Promise.all([...byIssuer.values()].map((keys) => keys.prefetch()));
    },
    get ready() {
      return [...byIssuer.values()].every((keys) => keys.ready);
    },
  };
}

/** Whether two configurations of one issuer fetch and cache keys identically. */
function sameKeySettings(a: IssuerPolicy, b: IssuerPolicy): boolean {
  const source = (issuer: IssuerPolicy) => {
    const keys = issuer.keys;
    if (keys.kind === 'uri') return `uri ${keys.uri.href}`;
    if (keys.kind === 'file') return `file ${keys.path}`;
    return `discovery ${keys.metadataUrl.href} ${keys.issuer}`;
  };
  return (
    source(a) === source(b) &&
    a.jwksCacheTtlSeconds === b.jwksCacheTtlSeconds &&
    a.jwksRefreshCooldownSeconds === b.jwksRefreshCooldownSeconds
  );
}
