import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicyFileRead } from '../../src/policy/policy-directory.js';

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
