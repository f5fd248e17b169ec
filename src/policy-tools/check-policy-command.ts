import { fetchKeySetOverHttp, type FetchKeySet } from '../authn/read-key-set.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { loadPolicyDirectory, policyFromRead, readPolicyText } from '../policy/load-policy.js';
import type { FileVerdict } from '../policy/policy-directory.js';
import { isPolicyDirectory } from '../policy/read-policy-directory.js';
import { formatPolicyProblem, PolicyError, type PolicyProblem } from '../policy/policy-error.js';
import {
  findingFails,
  policyFindings,
  type FindingContext,
  type PolicyFinding,
} from '../policy/policy-findings.js';
import type { CommandIo } from '../command/command-io.js';
import { parseOpsArgs } from '../args/parse-command-args.js';
import { YamlLocations } from '../policy/yaml-locations.js';
import { readScopesSupported, SCOPES_SUPPORTED_WAIT_MS } from './scopes-supported.js';

/** What `authz check-policy --json` prints. `ok` is whether the command exits 0. */
export interface CheckPolicyReport {
  readonly ok: boolean;
  /** Why the policy cannot be used at all (it does not compile). */
  readonly errors: readonly PolicyProblem[];
  /**
   * Every finding about a policy that compiles (docs/policy-checks.md), each with its `level` (error,
   * warning or notice), `fix` and, when the route accepts it, `accepted`. Named `warnings` since before
   * findings had levels.
   */
  readonly warnings: readonly PolicyFinding[];
  /**
   * For a policy directory only: each file's verdict (the root first, then by name), as `authz serve`
   * would judge it at start; a refused or not admitted file fails the check.
   */
  readonly files?: readonly FileVerdict[];
}

/** How `check-policy` reads the issuers' discovery documents; injected by tests, so that nothing touches the network. */
export interface CheckPolicyOptions {
  /** Default: plain HTTP fetch, no redirects. */
  readonly fetchDocument?: FetchKeySet;
  /** How long to wait for them all, in milliseconds (default `SCOPES_SUPPORTED_WAIT_MS`, 3 seconds). */
  readonly discoveryWaitMs?: number;
}

/**
 * `authz check-policy FILE [--json] [--strict] [--offline]`: loads the policy as `authz serve` would (key
 * files must exist) and reports every error, then every finding (docs/policy-checks.md). A policy
 * directory is checked by `checkPolicyDirectory`. Exit 0 when the
 * policy can be used and no error-level finding stands (accepted findings aside); with `--strict`, no
 * warning either. Notices never fail. 1 otherwise.
 *
 * When the policy declares no `known_scopes`, the discovery documents of the issuers found by discovery
 * are read (all together, at most `SCOPES_SUPPORTED_WAIT_MS`) so that route scopes none of them advertises
 * are reported (`scope_not_advertised`); `--offline` reads nothing.
 *
 * @throws UsageError for bad arguments.
 */
export async function checkPolicyCommand(
  argv: readonly string[],
  io: CommandIo,
  options: CheckPolicyOptions = {},
): Promise<number> {
  const { values, positionals } = parseOpsArgs(
    argv,
    { json: { type: 'boolean' }, strict: { type: 'boolean' }, offline: { type: 'boolean' } },
    { min: 1, max: 1, name: 'the policy FILE to check' },
  );
  const file = positionals[0]!;
  if (await isPolicyDirectory(file)) return checkPolicyDirectory(file, values, io);
  const json = values['json'] === true;
  const strict = values['strict'] === true;
  const offline = values['offline'] === true;

  let errors: readonly PolicyProblem[] = [];
  let findings: readonly PolicyFinding[] = [];
  let routes = 0;
  let services: number | undefined; // counted only for a file that lists services
  try {
    // Read once: compiled as `authz serve` would (key files must exist), then located for the findings.
    const read = await readPolicyText(file);
    const policy = await policyFromRead(read, file);
    routes = policy.services.reduce((count, service) => count + service.routes.length, 0);
    if (policy.explicitServices) services = policy.services.length;
    if ('text' in read) {
      const context = offline ? {} : await advertisedScopes(policy, options);
      findings = policyFindings(policy, new YamlLocations(read.text), context);
    }
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    errors = error.problems;
  }

  const ok = errors.length === 0 && !findings.some((finding) => findingFails(finding, strict));
  if (json) {
    const report: CheckPolicyReport = { ok, errors, warnings: findings };
    io.out(JSON.stringify(report, null, 2) + '\n');
    return ok ? 0 : 1;
  }
  for (const problem of errors) io.out(formatPolicyProblem(problem) + '\n');
  for (const finding of findings) io.out(formatFinding(file, finding) + '\n');
  io.out(summary(file, services, routes, errors.length, findings, strict) + '\n');
  return ok ? 0 : 1;
}

/** The issuers' `scopes_supported`, when the policy declares no `known_scopes` and some issuer has discovery. */
async function advertisedScopes(
  policy: CompiledPolicy,
  options: CheckPolicyOptions,
): Promise<FindingContext> {
  if (policy.knownScopes !== undefined) return {};
  if (![...policy.issuers.values()].some((issuer) => issuer.keys.kind === 'discovery')) return {};
  const scopesSupported = await readScopesSupported(
    policy,
    options.fetchDocument ?? fetchKeySetOverHttp,
    options.discoveryWaitMs ?? SCOPES_SUPPORTED_WAIT_MS,
  );
  return { scopesSupported };
}

/**
 * `policy.yaml:12:5: warning: routes[3]: never matches: ... [route_shadowed]`, then the fix, and for an
 * accepted finding the reason, each on an indented line.
 */
export function formatFinding(file: string, finding: PolicyFinding): string {
  // In a directory, each finding is in its own file (the root or a service file), not in the folder.
  const located = finding.file ?? file;
  const where = finding.line > 0 ? `${located}:${finding.line}:${finding.column}` : located;
  const level = finding.accepted === undefined ? finding.level : `${finding.level} (accepted)`;
  const lines = [`${where}: ${level}: ${finding.path}: ${finding.message} [${finding.code}]`];
  if (finding.accepted !== undefined) lines.push(`  accepted: ${finding.accepted.reason}`);
  else lines.push(`  fix: ${finding.fix}`);
  return lines.join('\n');
}

/**
 * `policy.yaml: 5 routes, 0 warnings: ok`; error-level findings, notices and accepted findings are counted
 * only when there are some, so a policy without them reads as it always did.
 */
function summary(
  file: string,
  services: number | undefined,
  routes: number,
  errors: number,
  findings: readonly PolicyFinding[],
  strict: boolean,
): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (errors > 0) return `${file}: ${count(errors, 'error')}: the policy cannot be used`;
  const standing = (level: PolicyFinding['level']) =>
    findings.filter((f) => f.level === level && f.accepted === undefined).length;
  const risks = standing('error');
  const warnings = standing('warning');
  const notices = standing('notice');
  const accepted = findings.filter((f) => f.accepted !== undefined).length;
  const verdict =
    risks > 0
      ? 'error-level findings fail the check'
      : warnings > 0 && strict
        ? 'warnings fail the check (--strict)'
        : warnings > 0
          ? 'usable'
          : 'ok';
  const counts = [
    ...(services === undefined ? [] : [count(services, 'service')]),
    count(routes, 'route'),
    ...(risks === 0 ? [] : [count(risks, 'error-level finding')]),
    count(warnings, 'warning'),
    ...(notices === 0 ? [] : [count(notices, 'notice')]),
    ...(accepted === 0 ? [] : [`${accepted} accepted`]),
  ];
  return `${file}: ${counts.join(', ')}: ${verdict}`;
}

/**
 * `check-policy DIR`: judges the directory as `authz serve` would at start (each service file on its own
 * against the root, the reload guard included), then prints one line per file with its verdict, the
 * findings of the files in force, and a summary. Exit 1, as for a single file that cannot be used, when
 * the root cannot be used (nothing can be served), when a file is refused or not admitted (a team's
 * service would not be served), or on the findings that fail a single file.
 */
async function checkPolicyDirectory(
  folder: string,
  values: Readonly<Record<string, unknown>>,
  io: CommandIo,
): Promise<number> {
  const json = values['json'] === true;
  const strict = values['strict'] === true;
  let errors: readonly PolicyProblem[] = [];
  let findings: readonly PolicyFinding[] = [];
  let verdicts: readonly FileVerdict[] = [];
  let routes = 0;
  let services = 0;
  try {
    const judgement = await loadPolicyDirectory(folder, undefined, {});
    const { policy } = judgement.inForce;
    verdicts = judgement.verdicts;
    routes = policy.services.reduce((count, service) => count + service.routes.length, 0);
    services = policy.services.length;
    findings = judgement.inForce.findings;
    // The core judges a directory's findings without discovery (serve never waits on the network for
    // them), so scope_not_advertised is not reported for a directory: declare known_scopes in the root.
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    errors = error.problems;
  }

  const refused = verdicts.filter((verdict) => !verdict.inForce);
  const ok =
    errors.length === 0 && refused.length === 0 && !findings.some((finding) => findingFails(finding, strict));
  if (json) {
    const report: CheckPolicyReport = { ok, errors, warnings: findings, files: verdicts };
    io.out(JSON.stringify(report, null, 2) + '\n');
    return ok ? 0 : 1;
  }
  for (const verdict of verdicts) io.out(formatVerdict(verdict) + '\n');
  for (const problem of errors) io.out(formatPolicyProblem(problem) + '\n');
  for (const finding of findings) io.out(formatFinding(folder, finding) + '\n');
  const line = summary(folder, services, routes, errors.length, findings, strict);
  io.out((refused.length === 0 ? line : refusedSummary(line, verdicts.length, refused.length)) + '\n');
  return ok ? 0 : 1;
}

/**
 * `policy.gateway.d/bank.yaml: service file, owner team-bank, services bank: in force`; a refused file
 * says what of it is served instead, and its problems follow, indented.
 */
export function formatVerdict(verdict: FileVerdict): string {
  const parts = [
    verdict.role === 'root' ? 'root' : 'service file',
    `owner ${verdict.owner ?? 'unknown'}`,
    ...(verdict.role === 'root' ? [] : [`services ${verdict.services.join(' ') || 'none'}`]),
  ];
  const state =
    verdict.outcome === 'not_admitted'
      ? 'not admitted'
      : verdict.inForce
        ? 'in force'
        : verdict.outcome === 'removed'
          ? 'removed'
          : `refused (${verdict.serving === 'last_good' ? 'serving its last good version' : 'serving nothing'})`;
  const code = verdict.code === undefined || verdict.inForce ? '' : ` [${verdict.code}]`;
  const problems = verdict.inForce ? [] : (verdict.problems ?? []).map((problem) => `  ${problem}`);
  return [`${verdict.file}: ${parts.join(', ')}: ${state}${code}`, ...problems].join('\n');
}

/** The summary of a directory with refused files: the counts as for a file, then why it fails. */
function refusedSummary(line: string, files: number, refused: number): string {
  const counts = line.slice(0, line.lastIndexOf(': '));
  return `${counts}, ${refused} of ${files} files refused or not admitted: the directory fails the check`;
}
