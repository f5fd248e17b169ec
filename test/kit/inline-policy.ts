import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { CompiledPolicy, CompiledService } from '../../src/policy/compiled-policy.js';

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

/**
 * The one service of a policy without `services`: the implicit `default`, for every host. Throws for a
 * policy that lists services, so that a test never picks one of several by accident.
 */
export function implicitService(policy: CompiledPolicy): CompiledService {
  const [service] = policy.services;
  if (policy.explicitServices || policy.services.length !== 1 || service === undefined) {
    throw new Error('the policy lists services: choose one by name');
  }
  return service;
}

/** The implicit service of a policy with the demo issuer and these routes (see compileRoutes). */
export function compileService(...routes: string[]): CompiledService {
  return implicitService(compileRoutes(...routes));
}

/** One trusted issuer of a policy written by `servicesPolicyText`. */
export interface IssuerSpec {
  readonly issuer: string;
  readonly audiences: readonly string[];
  /** Where its keys are (default: `/.well-known/jwks.json` under the issuer). */
  readonly jwksUri?: string;
}

/** One entry of `services`, as `servicesPolicyText` writes it; left-out keys are left out of the file. */
export interface ServiceSpec {
  readonly name: string;
  readonly hosts?: readonly string[];
  readonly realm?: string;
  readonly mode?: 'enforce' | 'report-only';
  /** The service's `issuers`: by `iss`, with the audiences it accepts (none given: the issuer's own). */
  readonly issuers?: readonly { readonly issuer: string; readonly audiences?: readonly string[] }[];
  /** `claim_headers`: claim name to header name, written in this order. */
  readonly claimHeaders?: Readonly<Record<string, string>>;
  /** Each a YAML flow mapping, as for demoPolicyText. */
  readonly routes: readonly string[];
}

export interface ServicesPolicySpec {
  /** The top-level realm, the default of every service (none given: left out). */
  readonly realm?: string;
  readonly mode?: 'enforce' | 'report-only';
  /** Default: the demo issuer with the demo audience. */
  readonly issuers?: readonly IssuerSpec[];
  readonly services: readonly ServiceSpec[];
}

/**
 * The text of a policy with `services` (RS256 issuers). Values are written as JSON strings, which YAML
 * reads as double-quoted scalars, so that `*.example.com` is a host rather than an alias.
 */
export function servicesPolicyText(spec: ServicesPolicySpec): string {
  const q = (value: string) => JSON.stringify(value);
  const list = (values: readonly string[]) => `[${values.map(q).join(', ')}]`;
  const issuers = spec.issuers ?? [{ issuer: DEMO_ISSUER, audiences: [DEMO_AUDIENCE] }];
  return [
    'version: 1',
    ...(spec.realm === undefined ? [] : [`realm: ${q(spec.realm)}`]),
    ...(spec.mode === undefined ? [] : [`mode: ${spec.mode}`]),
    'issuers:',
    ...issuers.flatMap((entry) => [
      `  - issuer: ${q(entry.issuer)}`,
      `    audiences: ${list(entry.audiences)}`,
      `    jwks_uri: ${q(entry.jwksUri ?? new URL('.well-known/jwks.json', entry.issuer).href)}`,
      '    algorithms: [RS256]',
    ]),
    'services:',
    ...spec.services.flatMap((service) => [
      `  - name: ${q(service.name)}`,
      ...(service.hosts === undefined ? [] : [`    hosts: ${list(service.hosts)}`]),
      ...(service.realm === undefined ? [] : [`    realm: ${q(service.realm)}`]),
      ...(service.mode === undefined ? [] : [`    mode: ${service.mode}`]),
      ...(service.issuers === undefined
        ? []
        : [
            '    issuers:',
            ...service.issuers.map(
              ({ issuer, audiences }) =>
                `      - { issuer: ${q(issuer)}${audiences === undefined ? '' : `, audiences: ${list(audiences)}`} }`,
            ),
          ]),
      ...(service.claimHeaders === undefined
        ? []
        : [
            '    claim_headers:',
            ...Object.entries(service.claimHeaders).map(
              ([claim, header]) => `      ${q(claim)}: ${q(header)}`,
            ),
          ]),
      service.routes.length === 0 ? '    routes: []' : '    routes:',
      ...service.routes.map((route) => `      - ${route}`),
    ]),
    '',
  ].join('\n');
}
