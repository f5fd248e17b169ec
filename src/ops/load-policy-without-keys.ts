import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { compilePolicy } from '../policy/compile-policy.js';
import { MAX_POLICY_BYTES } from '../policy/load-policy.js';
import { PolicyError } from '../policy/policy-error.js';
import { readTextFile } from './read-text-file.js';

/**
 * Reads and compiles a policy file like `loadPolicy`, except that it does not require the `jwks_file`
 * key sets to exist. `authz test`, `authz diff` and `authz explain --claims` evaluate given claims and
 * never check a signature, and the demo policy's key file (`.authz-dev/jwks.json`) only appears after the
 * first `authz dev-token`: refusing to run a policy's tests on a fresh checkout would help no one.
 *
 * @throws PolicyError (`ERR_POLICY_READ`, `ERR_POLICY_SYNTAX`, `ERR_POLICY_INVALID`).
 */
export async function loadPolicyWithoutKeys(file: string): Promise<CompiledPolicy> {
  const read = await readTextFile(file, MAX_POLICY_BYTES);
  if ('problem' in read) {
    throw new PolicyError('ERR_POLICY_READ', [
      { file, line: 0, column: 0, path: '', message: `the policy file ${read.problem}` },
    ]);
  }
  return compilePolicy(read.text, file);
}
