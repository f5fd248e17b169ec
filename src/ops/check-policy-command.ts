import { policyFromRead, readPolicyText } from '../policy/load-policy.js';
import { formatPolicyProblem, PolicyError, type PolicyProblem } from '../policy/policy-error.js';
import { policyWarnings, type PolicyWarning } from './check-policy.js';
import type { CommandIo } from './command-io.js';
import { parseOpsArgs } from '../args/parse-command-args.js';
import { YamlLocations } from '../policy/yaml-locations.js';

/** What `authz check-policy --json` prints. `ok` is whether the command exits 0. */
export interface CheckPolicyReport {
  readonly ok: boolean;
  readonly errors: readonly PolicyProblem[];
  readonly warnings: readonly PolicyWarning[];
}

/**
 * `authz check-policy FILE [--json] [--strict]`: loads the policy as `authz serve` would (key files must
 * exist) and reports every error, then warnings about what is legal but likely a mistake. Exit 0 when the
 * policy can be used (and, with `--strict`, has no warnings), 1 otherwise.
 *
 * @throws UsageError for bad arguments.
 */
export async function checkPolicyCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseOpsArgs(
    argv,
    { json: { type: 'boolean' }, strict: { type: 'boolean' } },
    { min: 1, max: 1, name: 'the policy FILE to check' },
  );
  const file = positionals[0]!;
  const json = values['json'] === true;
  const strict = values['strict'] === true;

  let errors: readonly PolicyProblem[] = [];
  let warnings: readonly PolicyWarning[] = [];
  let routes = 0;
  let services: number | undefined; // counted only for a file that lists services
  try {
    // Read once: compiled as `authz serve` would (key files must exist), then located for the warnings.
    const read = await readPolicyText(file);
    const policy = await policyFromRead(read, file);
    routes = policy.services.reduce((count, service) => count + service.routes.length, 0);
    if (policy.explicitServices) services = policy.services.length;
    if ('text' in read) warnings = policyWarnings(policy, new YamlLocations(read.text));
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    errors = error.problems;
  }

  const ok = errors.length === 0 && (!strict || warnings.length === 0);
  if (json) {
    const report: CheckPolicyReport = { ok, errors, warnings };
    io.out(JSON.stringify(report, null, 2) + '\n');
    return ok ? 0 : 1;
  }
  for (const problem of errors) io.out(formatPolicyProblem(problem) + '\n');
  for (const warning of warnings) io.out(formatWarning(file, warning) + '\n');
  io.out(summary(file, services, routes, errors.length, warnings.length, strict) + '\n');
  return ok ? 0 : 1;
}

/** `policy.yaml:12:5: warning: routes[3]: never matches: ... [route_shadowed]` */
function formatWarning(file: string, warning: PolicyWarning): string {
  const where = warning.line > 0 ? `${file}:${warning.line}:${warning.column}` : file;
  return `${where}: warning: ${warning.path}: ${warning.message} [${warning.code}]`;
}

function summary(
  file: string,
  services: number | undefined,
  routes: number,
  errors: number,
  warnings: number,
  strict: boolean,
): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (errors > 0) return `${file}: ${count(errors, 'error')}: the policy cannot be used`;
  const verdict = warnings === 0 ? 'ok' : strict ? 'warnings fail the check (--strict)' : 'usable';
  const listed = services === undefined ? '' : `${count(services, 'service')}, `;
  return `${file}: ${listed}${count(routes, 'route')}, ${count(warnings, 'warning')}: ${verdict}`;
}
