/** Stable codes for everything that can be wrong with a policy file, or a policy test file. */
export type PolicyErrorCode =
  | 'ERR_POLICY_READ' // the file could not be read (missing, unreadable, too large)
  | 'ERR_POLICY_SYNTAX' // not well-formed YAML
  | 'ERR_POLICY_INVALID' // well-formed, but breaks the policy schema or a semantic rule
  | 'ERR_POLICY_FINDINGS' // valid, but with error-level findings not accepted (the reload guard, at start too)
  // A policy directory (docs/policy.md, "A policy directory"):
  | 'ERR_POLICY_DIRECTORY' // the directory cannot be used: unreadable, no root file or two, too many files
  | 'ERR_POLICY_CONFLICT' // a service file claims what another file holds (service name, host, claim header)
  | 'ERR_POLICY_SERVICE_RULES' // a service file does what the root's service_rules refuse
  | 'ERR_POLICY_FILE_MISSING' // a service file the root names is gone: removing it takes the root's say-so
  | 'ERR_POLICY_FILE_NOT_ADMITTED' // a YAML file the root's service_files do not admit
  | 'ERR_POLICY_ROOT_BREAKS_FILES' // a root change that service files in force could not live with
  | 'ERR_POLICY_TEST_READ' // a policy test file: missing, unreadable, too large, not UTF-8
  | 'ERR_POLICY_TEST_SYNTAX' // a policy test file that is not well-formed YAML
  | 'ERR_POLICY_TEST_INVALID'; // well-formed, but not a policy test file (docs/policy-tests.md)

/** One problem in a policy (or policy test) file, located for a human editing it. */
export interface PolicyProblem {
  /** The policy file as given to the loader. */
  readonly file: string;
  /** 1-based line, or 0 when the problem concerns the file as a whole. */
  readonly line: number;
  /** 1-based column, or 0 when unknown. */
  readonly column: number;
  /** Where in the document, e.g. `routes[1].methods[0]`; empty for the whole document. */
  readonly path: string;
  readonly message: string;
}

/** Formats a problem the way compilers do, so editors and CI logs can jump to it. */
export function formatPolicyProblem(problem: PolicyProblem): string {
  const where = problem.line > 0 ? `${problem.file}:${problem.line}:${problem.column}` : problem.file;
  const path = problem.path === '' ? '' : ` ${problem.path}:`;
  return `${where}:${path} ${problem.message}`;
}

/** A policy (or policy test file) that cannot be used. Carries every problem found, not just the first. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly code: PolicyErrorCode;
  readonly problems: readonly PolicyProblem[];

  constructor(code: PolicyErrorCode, problems: readonly PolicyProblem[]) {
    super(problems.map(formatPolicyProblem).join('\n'));
    this.code = code;
    this.problems = problems;
  }
}
