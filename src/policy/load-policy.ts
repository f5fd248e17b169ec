import { stat } from 'node:fs/promises';
import type { CompiledPolicy } from './compiled-policy.js';
import { compilePolicy } from './compile-policy.js';
import { PolicyError } from './policy-error.js';
import { readTextFile, type TextFileRead } from './read-text-file.js';

/** A policy larger than this is refused: no sane policy comes near it, a runaway generator might. */
export const MAX_POLICY_BYTES = 1024 * 1024; // 1 MiB

export interface LoadPolicyOptions {
  /**
   * false for tools that evaluate given claims and never check a signature (`authz test`, `diff`,
   * `explain --claims`): the demo's key file only appears after the first `authz dev-token`, and a
   * policy's tests should run on a fresh checkout. Default true.
   */
  readonly requireKeyFiles?: boolean;
}

/**
 * Reads, validates and compiles a policy file, and checks that every `jwks_file` it names exists.
 *
 * @throws PolicyError (`ERR_POLICY_READ`, `ERR_POLICY_SYNTAX`, `ERR_POLICY_INVALID`).
 */
export async function loadPolicy(file: string, options: LoadPolicyOptions = {}): Promise<CompiledPolicy> {
  return policyFromRead(await readPolicyText(file), file, options);
}

/** Reads a policy file's text, within `MAX_POLICY_BYTES`; a problem is returned, not thrown. */
export function readPolicyText(file: string): Promise<TextFileRead> {
  return readTextFile(file, MAX_POLICY_BYTES);
}

/**
 * What `loadPolicy` does once the file is read: for the watcher, which reads a file once both to see
 * whether it changed and to compile it.
 *
 * @throws PolicyError as `loadPolicy` does.
 */
export async function policyFromRead(
  read: TextFileRead,
  file: string,
  options: LoadPolicyOptions = {},
): Promise<CompiledPolicy> {
  if ('problem' in read) {
    throw new PolicyError('ERR_POLICY_READ', [{ file, line: 0, column: 0, path: '', message: read.problem }]);
  }
  const policy = compilePolicy(read.text, file);
  if (options.requireKeyFiles === false) return policy;
  for (const issuer of policy.issuers.values()) {
    if (issuer.keys.kind !== 'file') continue;
    const info = await stat(issuer.keys.path).catch(() => undefined);
    if (info === undefined || !info.isFile()) {
      throw new PolicyError('ERR_POLICY_INVALID', [
        {
          file,
          line: 0,
          column: 0,
          path: 'issuers',
          message: `jwks_file of issuer "${issuer.issuer}" does not exist: ${issuer.keys.path}`,
        },
      ]);
    }
  }
  return policy;
}
