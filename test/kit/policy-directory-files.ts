import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicyFileRead } from '../../src/policy/policy-directory.js';
import { createTempDir, writeTextFile } from './authz-harness.js';

/**
 * Policy directories for tests (docs/policy.md, "A policy directory"): the text of a root file and of
 * service files, as an in-memory listing for `judgePolicyDirectory`, or written to a folder for the loader,
 * `serve` and the CLI.
 */

export const TEAM_ISSUER = 'https://idp.teams.test/';
export const TEAM_AUDIENCE = 'https://api.teams.test';

export interface RootOptions {
  readonly serviceFiles?: readonly string[];
  readonly owner?: string;
  /** Lines added at the top level, e.g. `reload_guard: off`. */
  readonly extra?: readonly string[];
  /** The issuers block as YAML lines; default: one issuer with a key file `keys.json` beside the root. */
  readonly issuers?: readonly string[];
}

export function rootText(options: RootOptions = {}): string {
  return [
    'version: 1',
    `owner: ${options.owner ?? 'platform'}`,
    `service_files: [${(options.serviceFiles ?? ['bank.yaml', 'cards.yaml']).join(', ')}]`,
    ...(options.extra ?? []),
    'issuers:',
    ...(options.issuers ?? [
      `  - issuer: ${TEAM_ISSUER}`,
      `    audiences: [${TEAM_AUDIENCE}]`,
      '    jwks_file: keys.json',
      '    algorithms: [ES256]',
      '    require_typ: at+jwt',
    ]),
    '',
  ].join('\n');
}

export interface ServiceOptions {
  readonly name: string;
  readonly hosts?: readonly string[];
  /** Route lines in flow style, e.g. `{ methods: [GET], path: /balance, scopes: [view:balance] }`. */
  readonly routes?: readonly string[];
  readonly claimHeaders?: Readonly<Record<string, string>>;
  /** Lines added to the service, e.g. `mode: report-only`. */
  readonly extra?: readonly string[];
}

/** A service file: `owner` and its services, each with a realm of its own name. */
export function serviceFileText(owner: string, ...services: readonly ServiceOptions[]): string {
  return [
    `owner: ${owner}`,
    'services:',
    ...services.flatMap((service) => [
      `  - name: ${service.name}`,
      `    hosts: [${(service.hosts ?? [`${service.name}.example`]).map((host) => JSON.stringify(host)).join(', ')}]`,
      `    realm: ${service.name}-api`,
      ...(service.claimHeaders === undefined
        ? []
        : [
            '    claim_headers:',
            ...Object.entries(service.claimHeaders).map(([claim, header]) => `      ${claim}: ${header}`),
          ]),
      ...(service.extra ?? []).map((line) => `    ${line}`),
      '    routes:',
      ...(
        service.routes ?? [`{ methods: [GET], path: /${service.name}, scopes: [view:${service.name}] }`]
      ).map((route) => `      - ${route}`),
    ]),
    '',
  ].join('\n');
}

/** Files by name as `readPolicyDirectory` would list them (sorted by name). */
export function listingOf(
  folder: string,
  files: Readonly<Record<string, string>>,
): { readonly folder: string; readonly files: readonly PolicyFileRead[] } {
  return {
    folder,
    files: Object.keys(files)
      .sort()
      .map((name) => ({ name, read: { text: files[name]! } })),
  };
}

/** Writes the files (and removes those given as undefined) in `dir`, creating it. */
export async function writePolicyDirectory(
  dir: string,
  files: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    if (text === undefined) await rm(join(dir, name), { force: true });
    else await writeFile(join(dir, name), text);
  }
}

/**
 * The gateway demo as a policy directory (docs/policy.md, "A policy directory"), small enough for exact
 * expectations: a root owned by `platform`, `bank.yaml` (team-bank) and `statements.yaml`
 * (team-statements), and `bank.test.yaml` beside them (`policy: .`).
 */
export const GATEWAY_DIRECTORY_FILES: Readonly<Record<string, string>> = Object.freeze({
  '_gateway.yaml': [
    'version: 1',
    'owner: platform',
    'service_files: [bank.yaml, statements.yaml]',
    'known_scopes: [view:balance, view:statements]',
    'issuers:',
    '  - issuer: https://idp.example/',
    '    audiences: [https://my-banking-api]',
    '    jwks_file: ../keys/jwks.json',
    '    algorithms: [RS256]',
    '    require_typ: at+jwt',
    '',
  ].join('\n'),
  'bank.yaml': [
    'owner: team-bank',
    'services:',
    '  - name: bank',
    '    hosts: [bank.example]',
    '    realm: bank-api',
    '    routes:',
    '      - { methods: [GET], path: /balance, scopes: [view:balance] }',
    '      - path: /healthz',
    '        public: true',
    '',
  ].join('\n'),
  'statements.yaml': [
    'owner: team-statements',
    'services:',
    '  - name: statements',
    '    hosts: [statements.example]',
    '    realm: statements-api',
    '    issuers:',
    '      - { issuer: https://idp.example/, audiences: [https://statements-api] }',
    '    routes:',
    '      - { methods: [GET], path: /balance, scopes: [view:statements] }',
    '',
  ].join('\n'),
  'bank.test.yaml': [
    'policy: .',
    'now: 2026-11-27T12:00:00Z',
    'cases:',
    '  - name: balance with view:balance',
    '    host: bank.example',
    '    request: { method: GET, path: /balance }',
    '    token: { scope: view:balance }',
    '    expect: allow',
    '  - name: the statements service asks for its own scope',
    '    host: statements.example',
    '    request: { method: GET, path: /balance }',
    '    token: { scope: view:balance, aud: https://statements-api }',
    '    expect: { status: 403, error: insufficient_scope, scope: view:statements }',
    '',
  ].join('\n'),
});

/**
 * Writes a policy directory into a new temporary folder: `policy.d/` with GATEWAY_DIRECTORY_FILES, each
 * replaced or added by `files` (null: left out), and `keys/jwks.json`, the root's key file.
 */
export async function writeGatewayDirectory(
  files: Readonly<Record<string, string | null>> = {},
): Promise<{ folder: string; remove: () => Promise<void> }> {
  const temp = await createTempDir('policy-directory-');
  await mkdir(join(temp.dir, 'keys'));
  await writeTextFile(join(temp.dir, 'keys'), 'jwks.json', '{"keys":[]}\n');
  const folder = join(temp.dir, 'policy.d');
  await mkdir(folder);
  for (const [name, text] of Object.entries({ ...GATEWAY_DIRECTORY_FILES, ...files })) {
    if (text !== null) await writeTextFile(folder, name, text);
  }
  return { folder, remove: temp.remove };
}
