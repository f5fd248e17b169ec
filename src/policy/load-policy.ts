import { stat } from 'node:fs/promises';
import type { CompiledPolicy } from './compiled-policy.js';
import { compilePolicy } from './compile-policy.js';
import {
  judgePolicyDirectory,
  refusedFilesError,
  type DirectoryInForce,
  type DirectoryJudgement,
  type PolicyDirectoryListing,
} from './policy-directory.js';
import { PolicyError } from './policy-error.js';
import { isPolicyDirectory, readPolicyDirectory } from './read-policy-directory.js';
import { readPolicyText } from './read-policy-text.js';
import type { TextFileRead } from './read-text-file.js';

export { MAX_POLICY_BYTES, readPolicyText } from './read-policy-text.js';

export interface LoadPolicyOptions {
  /**
   * false for tools that evaluate given claims and never check a signature (`authz test`, `diff`,
   * `explain --claims`): the demo's key file only appears after the first `authz dev-token`, and a
   * policy's tests should run on a fresh checkout. Default true.
   */
  readonly requireKeyFiles?: boolean;
  /**
   * A policy directory at start: `off` admits service files with error-level findings (`serve
   * --allow-policy-errors`); by default the root's `reload_guard` decides, as for a reload.
   */
  readonly startGuard?: 'off';
}

/**
 * Reads, validates and compiles a policy file, or a policy directory's files merged (docs/policy.md, "A
 * policy directory"), and checks that every `jwks_file` it names exists. For a directory, a refused file
 * is an error here: the tools judge the policy as written, every file of it.
 *
 * @throws PolicyError (`ERR_POLICY_READ`, `ERR_POLICY_SYNTAX`, `ERR_POLICY_INVALID`, a directory's codes).
 */
export async function loadPolicy(file: string, options: LoadPolicyOptions = {}): Promise<CompiledPolicy> {
  if (await isPolicyDirectory(file)) {
    const judgement = await loadPolicyDirectory(file, undefined, options);
    const refused = refusedFilesError(judgement.verdicts);
    if (refused !== undefined) throw refused;
    return judgement.inForce.policy;
  }
  return policyFromRead(await readPolicyText(file), file, options);
}

/**
 * Reads a policy directory and judges it against what is in force (undefined at start-up), then checks
 * that the key files of the policy it would put in force exist: a missing one refuses the directory.
 *
 * @throws PolicyError when there is nothing in force and the root cannot be used.
 */
export async function loadPolicyDirectory(
  folder: string,
  previous: DirectoryInForce | undefined,
  options: LoadPolicyOptions = {},
  listing?: PolicyDirectoryListing,
): Promise<DirectoryJudgement> {
  const judgement = judgePolicyDirectory(
    listing ?? (await readPolicyDirectory(folder)),
    previous,
    options.startGuard,
  );
  if (options.requireKeyFiles !== false) {
    await checkKeyFiles(judgement.inForce.policy, judgement.inForce.root.file);
  }
  return judgement;
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
  await checkKeyFiles(policy, file);
  return policy;
}

/** @throws PolicyError when a `jwks_file` the policy names is not a file. */
async function checkKeyFiles(policy: CompiledPolicy, file: string): Promise<void> {
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
}
