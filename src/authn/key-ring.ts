import type { CompiledPolicy } from '../policy/compiled-policy.js';
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

/** Builds the key ring for a policy's issuers. Nothing is fetched until `prefetch` or first use. */
export function createKeyRing(policy: CompiledPolicy, deps: KeyRingDependencies): KeyRing {
  const byIssuer = new Map<string, IssuerKeys>();
  for (const issuer of policy.issuers.values()) {
    byIssuer.set(issuer.issuer, new IssuerKeys({ issuer, ...deps }));
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
