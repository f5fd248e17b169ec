import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createTempDir, writeTextFile } from './authz-harness.js';

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
export async function writePolicyDirectory(
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
