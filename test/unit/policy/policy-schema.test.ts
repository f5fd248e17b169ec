import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import {
  ROOT_FILE_SCHEMA,
  SERVICE_FILE_SCHEMA,
  validateRootFile,
  validateServiceFile,
} from '../../../src/policy/policy-directory-schema.js';
import policySchema from '../../../src/policy/policy.schema.json' with { type: 'json' };

// The JSON Schema is what editors complete and flag from (the yaml-language-server modeline in
// policy.yaml): every example policy the project ships must satisfy it, and the modeline must find it.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const validate = new Ajv2020({
  allErrors: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
}).compile(policySchema);

/** Every valid policy the repository ships as an example or fixture. */
const EXAMPLES = [
  'policy.yaml',
  'policy.gateway.yaml',
  'test/fixtures/policies/complete.yaml',
  'test/fixtures/policies/missing-jwks-file.yaml',
  'test/fixtures/ops/clean.yaml',
  'test/fixtures/ops/warnings.yaml',
  'test/fixtures/ops/report-only.yaml',
  'test/fixtures/ops/diff-old.yaml',
  'test/fixtures/ops/diff-same.yaml',
  'test/fixtures/ops/diff-scope-added.yaml',
  'test/fixtures/ops/diff-method-changed.yaml',
  'test/fixtures/ops/diff-route-removed.yaml',
];

describe('policy.schema.json', () => {
  it.each(EXAMPLES)('accepts the example policy %s', async (file) => {
    const data: unknown = parse(await readFile(join(ROOT, file), 'utf8'));
    expect(validate(data), JSON.stringify(validate.errors)).toBe(true);
  });

  it('is what policy.yaml points editors at', async () => {
    const text = await readFile(join(ROOT, 'policy.yaml'), 'utf8');
    const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text);
    expect(modeline).not.toBeNull();
    const schema = JSON.parse(await readFile(join(ROOT, modeline![1]!), 'utf8')) as unknown;
    expect(schema).toEqual(policySchema);
  });

  it('accepts the policy reference of docs/policy.md ("Every key"), which also compiles', async () => {
    const doc = await readFile(join(ROOT, 'docs/policy.md'), 'utf8');
    const section = doc.slice(doc.indexOf('\n## Every key\n'));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBeDefined();
    expect(validate(parse(block!)), JSON.stringify(validate.errors)).toBe(true);
    expect(compilePolicy(block!, join(ROOT, 'docs/policy.md')).services[0]?.routes.length).toBeGreaterThan(0);
  });

  it('refuses a policy with a misspelt key, as an editor would flag it', () => {
    expect(validate({ version: 1, realm: 'r', issuers: [], routes: [], rutes: [] })).toBe(false);
  });
});

describe('the policy directory schemas (policy-root.schema.json, policy-service-file.schema.json)', () => {
  it('are written out as the loader derives them from policy.schema.json', async () => {
    const written = async (name: string) =>
      JSON.parse(await readFile(join(ROOT, 'src', 'policy', name), 'utf8')) as unknown;
    expect(await written('policy-root.schema.json')).toEqual(ROOT_FILE_SCHEMA);
    expect(await written('policy-service-file.schema.json')).toEqual(SERVICE_FILE_SCHEMA);
  });

  it('name the root and service files of policy.gateway.d/ in their editor modelines, and accept them', async () => {
    const folder = join(ROOT, 'policy.gateway.d');
    for (const name of ['_gateway.yaml', 'bank.yaml', 'statements.yaml']) {
      const text = await readFile(join(folder, name), 'utf8');
      const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text);
      const schema = name === '_gateway.yaml' ? 'policy-root.schema.json' : 'policy-service-file.schema.json';
      expect(modeline?.[1], name).toBe(`../src/policy/${schema}`);
      const validate = name === '_gateway.yaml' ? validateRootFile : validateServiceFile;
      expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
    }
  });
});
