import { readFile, stat } from 'node:fs/promises';
import type { CompiledPolicy } from './compiled-policy.js';
import { compilePolicy } from './compile-policy.js';
import { PolicyError } from './policy-error.js';

/** A policy larger than this is refused: no sane policy comes near it, a runaway generator might. */
export const MAX_POLICY_BYTES = 1024 * 1024; // 1 MiB

/**
 * Reads, validates and compiles a policy file, and checks that every `jwks_file` it names exists.
 *
 * @throws PolicyError (`ERR_POLICY_READ`, `ERR_POLICY_SYNTAX`, `ERR_POLICY_INVALID`).
 */
export async function loadPolicy(file: string): Promise<CompiledPolicy> {
  const text = await readBounded(file);
  const policy = compilePolicy(text, file);
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

async function readBounded(file: string): Promise<string> {
  const fail = (message: string) =>
    new PolicyError('ERR_POLICY_READ', [{ file, line: 0, column: 0, path: '', message }]);
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw fail(`cannot read the policy file (${error.code ?? error.message})`);
  });
  if (!info.isFile()) throw fail('is not a regular file');
  if (info.size > MAX_POLICY_BYTES) throw fail(`is larger than ${MAX_POLICY_BYTES} bytes`);
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw fail(`cannot read the policy file (${error.code ?? error.message})`);
  });
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail('is not valid UTF-8');
  }
}
