import { formatPolicyProblem, PolicyError } from '../policy/policy-error.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { CommandIo } from '../command/command-io.js';
import { loadPolicy } from '../policy/load-policy.js';
import { parseOpsArgs } from '../args/parse-command-args.js';
import { normalisedRequestHost } from '../authz/request-host.js';
import { diffPolicies, type DecisionChange } from './policy-diff.js';
import { printable } from './terminal-text.js';

/**
 * `authz diff OLD NEW [--json]`: which example requests change outcome between two policies (files or
 * directories, in any mix), so a reviewer sees what an edit does. With a directory, the changes are
 * grouped by the owner of the service that decides them (`owner` in JSON). Prints only the changes (`METHOD PATH (host HOST) [profile]: OLD ->
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

  // A policy directory's services have owners: its changes are shown per owner, for each team to review.
  const byOwner = policies.some((policy) => policy.services.some((service) => service.origin !== undefined));
  const owners = diff.changes.map((change) =>
    byOwner ? changeOwner(change, newPolicy, oldPolicy) : undefined,
  );

  if (values['json'] === true) {
    const changes = diff.changes.map((change, i) =>
      byOwner ? { ...change, owner: owners[i] ?? null } : change,
    );
    io.out(JSON.stringify({ changed, ...diff, changes }, null, 2) + '\n');
    return changed ? 1 : 0;
  }
  if (byOwner) {
    for (const owner of groupOrder(owners)) {
      io.out(
        owner === undefined
          ? 'no owner (no service of a directory decides):\n'
          : `owner ${printable(owner)}:\n`,
      );
      diff.changes.forEach((change, i) => {
        if (owners[i] === owner) io.out(`  ${changeLine(change)}\n`);
      });
    }
  } else {
    for (const change of diff.changes) io.out(`${changeLine(change)}\n`);
  }
  const scope = `${diff.checks} checks: ${diff.requests} requests x ${diff.profiles.length} token profiles (${diff.profiles.join(', ')})`;
  const count = diff.changes.length;
  io.out(
    changed ? `${count} change${count === 1 ? '' : 's'} in ${scope}\n` : `no decision changes in ${scope}\n`,
  );
  return changed ? 1 : 0;
}

/** `METHOD PATH (host HOST) [profile]: OLD -> NEW`. */
function changeLine(change: DecisionChange): string {
  const where =
    change.host !== undefined
      ? ` (host ${printable(change.host)})`
      : change.service !== undefined
        ? ` (service ${printable(change.service)})`
        : '';
  return `${printable(change.method)} ${printable(change.path)}${where} [${change.profile}]: ${change.old} -> ${change.new}`;
}

/**
 * The owner of the service that decides a changed request: in the new policy, else (the service is gone)
 * in the old one; undefined when neither decides it with a service of a directory.
 */
function changeOwner(
  change: DecisionChange,
  newPolicy: CompiledPolicy,
  oldPolicy: CompiledPolicy,
): string | undefined {
  for (const policy of [newPolicy, oldPolicy]) {
    const selector = policy.serviceSelector;
    const service =
      change.service !== undefined
        ? selector.byName(change.service)
        : selector.forHost(normalisedRequestHost(change.host));
    if (service?.origin !== undefined) return service.origin.owner;
  }
  return undefined;
}

/** The owners in name order, the changes of no owner last. */
function groupOrder(owners: readonly (string | undefined)[]): (string | undefined)[] {
  const named = [...new Set(owners.filter((owner): owner is string => owner !== undefined))].sort();
  return owners.includes(undefined) ? [...named, undefined] : named;
}
