import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { loadPolicy, MAX_POLICY_BYTES } from '../../../src/policy/load-policy.js';
import { FIXTURES, ISSUER, policyErrorFromAsync, policyText } from './compile-policy-support.js';

describe('loadPolicy', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'authz-policy-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads, compiles and checks a policy whose key file exists', async () => {
    const file = join(FIXTURES, 'complete.yaml');
    const policy = await loadPolicy(file);

    expect(policy.source).toBe(file);
    expect(policy.services[0]?.routes).toHaveLength(5);
    expect(policy.version).toBe(compilePolicy(await readFile(file, 'utf8'), file).version);
  });

  it('refuses a policy whose jwks_file does not exist, naming the issuer and the resolved path', async () => {
    const file = join(FIXTURES, 'missing-jwks-file.yaml');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems).toEqual([
      expect.objectContaining({
        file,
        path: 'issuers',
        message: `jwks_file of issuer "https://idp.example/" does not exist: ${join(FIXTURES, 'no-such-folder/jwks.json')}`,
      }),
    ]);
  });

  it('refuses a jwks_file that is a folder', async () => {
    const file = join(dir, 'folder-as-keys.yaml');
    await mkdir(join(dir, 'keys-folder'));
    await writeFile(
      file,
      policyText({ issuers: [ISSUER[0]!, ISSUER[1]!, '    jwks_file: keys-folder', ISSUER[3]!] }),
    );
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_INVALID');
    expect(error.problems[0]?.message).toMatch(/does not exist: .*keys-folder$/);
  });

  it('refuses a missing file with ERR_POLICY_READ', async () => {
    const file = join(dir, 'absent.yaml');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems).toEqual([
      { file, line: 0, column: 0, path: '', message: 'cannot be read (ENOENT)' },
    ]);
    expect(error.message).toBe(`${file}: cannot be read (ENOENT)`);
  });

  it('refuses a folder given as the policy file', async () => {
    const error = await policyErrorFromAsync(() => loadPolicy(dir));

    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems[0]?.message).toBe('is not a regular file');
  });

  it('refuses a file that is not UTF-8', async () => {
    const file = join(dir, 'latin1.yaml');
    await writeFile(file, Buffer.from('version: 1\nrealm: caf\xe9\n', 'latin1'));
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems).toEqual([{ file, line: 0, column: 0, path: '', message: 'is not valid UTF-8' }]);
  });

  it('refuses a file larger than 1 MiB before reading it', async () => {
    const file = join(dir, 'huge.yaml');
    const text = policyText();
    await writeFile(file, text + '#'.repeat(MAX_POLICY_BYTES - Buffer.byteLength(text)) + '\n');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(MAX_POLICY_BYTES).toBe(1024 * 1024);
    expect(error.code).toBe('ERR_POLICY_READ');
    expect(error.problems[0]?.message).toBe('is larger than 1048576 bytes');
  });

  it('accepts a file of exactly 1 MiB', async () => {
    const file = join(dir, 'just-fits.yaml');
    const text = policyText();
    await writeFile(file, text + '#'.repeat(MAX_POLICY_BYTES - Buffer.byteLength(text)));

    await expect(loadPolicy(file)).resolves.toMatchObject({ services: [{ realm: 'bank-api' }] });
  });

  it('passes syntax and validity errors through with the file name', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'version: 1\nrealm: a: b\n');
    const error = await policyErrorFromAsync(() => loadPolicy(file));

    expect(error.code).toBe('ERR_POLICY_SYNTAX');
    expect(error.problems[0]).toMatchObject({ file, line: 2 });
  });
});
