import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../../src/policy/compiled-policy.js';

/** The issuer, audience and realm of the inline test policies (those of the repo's demo policy.yaml). */
export const DEMO_ISSUER = 'https://idp.example/';
export const DEMO_AUDIENCE = 'https://my-banking-api';
export const DEMO_REALM = 'bank-api';
/** The demo issuer's key set URL, unless a policy says otherwise. */
export const DEMO_JWKS_URI = 'https://idp.example/.well-known/jwks.json';

export interface DemoPolicyOptions {
  /** Where the one issuer's keys come from (default: `jwks_uri: DEMO_JWKS_URI`). */
  readonly keys?: { readonly jwksUri: string } | { readonly jwksFile: string };
  /** More issuer keys, written after `algorithms` in this order, e.g. `{ jwks_cache_ttl: 60 }`. */
  readonly issuerSettings?: Readonly<Record<string, string | number>>;
}

/**
 * The text of a policy with one issuer (DEMO_ISSUER, DEMO_AUDIENCE, RS256) and the given routes, each a
 * YAML flow mapping such as `{ methods: [GET], path: /balance, scopes: [view:balance] }`.
 *
 * The layout is fixed: line 1 `version`, 2 `realm`, 3 `issuers:`, 4 `issuer`, 5 `audiences`, 6 the key
 * source, 7 `algorithms`, then one line per issuer setting, then `routes:` and one line per route.
 */
export function demoPolicyText(routes: readonly string[], options: DemoPolicyOptions = {}): string {
  const keys = options.keys ?? { jwksUri: DEMO_JWKS_URI };
  const keySource = 'jwksUri' in keys ? `jwks_uri: ${keys.jwksUri}` : `jwks_file: ${keys.jwksFile}`;
  const settings = Object.entries(options.issuerSettings ?? {}).map(([key, value]) => `    ${key}: ${value}`);
  return [
    'version: 1',
    `realm: ${DEMO_REALM}`,
    'issuers:',
    `  - issuer: ${DEMO_ISSUER}`,
    `    audiences: [${DEMO_AUDIENCE}]`,
    `    ${keySource}`,
    '    algorithms: [RS256]',
    ...settings,
    routes.length === 0 ? 'routes: []' : 'routes:',
    ...routes.map((route) => `  - ${route}`),
    '',
  ].join('\n');
}

/** A compiled policy with the demo issuer and these routes, in this order (see demoPolicyText). */
export function compileRoutes(...routes: string[]): CompiledPolicy {
  return compilePolicy(demoPolicyText(routes), 'policy.yaml');
}
