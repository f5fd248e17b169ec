import { formatPolicyProblem, PolicyError } from '../policy/policy-error.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { CommandIo } from '../command/command-io.js';
import { loadPolicy } from '../policy/load-policy.js';
import { parseOpsArgs } from '../args/parse-command-args.js';
import { diffPolicies } from './policy-diff.js';
import { printable } from './terminal-text.js';

/**
 * `authz diff OLD NEW [--json]`: which example requests change outcome between two policy files, so a
 * reviewer sees what an edit does. Prints only the changes (`METHOD PATH (host HOST) [profile]: OLD ->
 * NEW`; the host only when a policy has services), then a summary. Exit like diff(1): 0 nothing changed,
 * 1 something did, 2 a policy cannot be used.
 *
 * @throws UsageError for bad arguments.
 */
export async function diffCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseOpsArgs(
    argv,
    { json: { type: 'boolean' } },
    { min: 2, max: 2, name: 'the OLD and NEW policy files' },
  );
  const policies: CompiledPolicy[] = [];
  for (const file of positionals) {
    try {
      policies.push(await loadPolicy(file, { requireKeyFiles: false }));
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      io.err(`authz: ${file}: the policy cannot be used (${error.code}):\n`);
      for (const problem of error.problems) io.err(formatPolicyProblem(problem) + '\n');
      return 2;
    }
  }
  const [oldPolicy, newPolicy] = policies as [CompiledPolicy, CompiledPolicy];
  const diff = await diffPolicies(oldPolicy, newPolicy, io.now());
  const changed = diff.changes.length > 0;

  if (values['json'] === true) {
    io.out(JSON.stringify({ changed, ...diff }, null, 2) + '\n');
    return changed ? 1 : 0;
  }
  for (const change of diff.changes) {
    const where =
      change.host !== undefined
        ? ` (host ${printable(change.host)})`
        : change.service !== undefined
          ? ` (service ${printable(change.service)})`
          : '';
    io.out(
      `${printable(change.method)} ${printable(change.path)}${where} [${change.profile}]: ${change.old} -> ${change.new}\n`,
    );
  }
  const scope = `${diff.checks} checks: ${diff.requests} requests x ${diff.profiles.length} token profiles (${diff.profiles.join(', ')})`;
  const count = diff.changes.length;
  io.out(
    changed ? `${count} change${count === 1 ? '' : 's'} in ${scope}\n` : `no decision changes in ${scope}\n`,
  );
  return changed ? 1 : 0;
}
