import type { PolicyProblem } from '../policy/policy-error.js';
import type { PolicyTestResult } from './run-policy-tests.js';
import { formatTable, printable } from './terminal-text.js';
import type { TestWarning } from './test-token-claims.js';

/** Plain output is kept within this many columns (file names aside); --json has everything in full. */
export const TEST_OUTPUT_COLUMNS = 120;

/** What became of one test file: its cases run (those `--run` selected), or why it could not be used. */
export type TestFileRun =
  | {
      readonly kind: 'run';
      readonly file: string;
      readonly policyFile: string;
      /** The clock of the run, e.g. `2026-11-27T12:00:00Z`, or `the current time`. */
      readonly clock: string;
      /** Cases in the file, selected or not. */
      readonly cases: number;
      /** The results of the selected cases, in file order. */
      readonly results: readonly PolicyTestResult[];
    }
  | {
      readonly kind: 'unusable';
      readonly file: string;
      /** Whether the test file or the policy it names is at fault. */
      readonly what: 'test_file' | 'policy';
      readonly code: string;
      readonly problems: readonly PolicyProblem[];
    };

/** The counts of a run, and whether it succeeds (exit 0). */
export interface TestTotals {
  readonly passed: number;
  readonly failed: number;
  /** Warnings over every selected case. */
  readonly warnings: number;
  readonly selected: number;
  /** Cases in the files that could be used, selected or not. */
  readonly cases: number;
  readonly unusableFiles: number;
  /** Every case passed and every file could be used (and, with `--strict`, no warning); ≥ 1 case ran. */
  readonly ok: boolean;
}

/** How a run was asked for: `--strict` and `--run`. */
export interface TestRunOptions {
  readonly strict: boolean;
  /** The `--run` pattern as given, or undefined: every case. */
  readonly run: string | undefined;
}

/** Adds up a run. */
export function testTotals(runs: readonly TestFileRun[], options: TestRunOptions): TestTotals {
  let passed = 0;
  let failed = 0;
  let warnings = 0;
  let cases = 0;
  let unusableFiles = 0;
  for (const run of runs) {
    if (run.kind === 'unusable') {
      unusableFiles++;
      continue;
    }
    cases += run.cases;
    for (const result of run.results) {
      if (result.passed) passed++;
      else failed++;
      warnings += result.warnings.length;
    }
  }
  const selected = passed + failed;
  const ok =
    failed === 0 &&
    unusableFiles === 0 &&
    (!options.strict || warnings === 0) &&
    (selected > 0 || options.run === undefined);
  return { passed, failed, warnings, selected, cases, unusableFiles, ok };
}

/**
 * The plain report of one file: a header, a table of its cases that fits `TEST_OUTPUT_COLUMNS` (long
 * cells cut with `…`; a failure's expected and actual cut where they differ, `cutAtDifference`), then each
 * failure (name, expected and actual in full on lines of their own) and each warning, with the file and
 * the case's line.
 */
export function formatFileRun(run: Extract<TestFileRun, { kind: 'run' }>, options: TestRunOptions): string {
  const { file, results } = run;
  const count =
    options.run === undefined
      ? plural(run.cases, 'case')
      : `${results.length} of ${plural(run.cases, 'case')} (--run ${JSON.stringify(options.run)})`;
  let text = `${file}: ${count} against ${run.policyFile}, clock ${run.clock}\n`;
  if (results.length > 0) {
    const header = ['CASE', 'EXPECTED', 'ACTUAL', 'RESULT'];
    const rows = fitColumns(
      header,
      results.map((r) => [printable(r.testCase.name), r.expected, r.actual, r.passed ? 'PASS' : 'FAIL']),
      TEST_OUTPUT_COLUMNS,
    );
    results.forEach((r, i) => {
      const row = rows[i]!;
      if (!r.passed) [row[1], row[2]] = cutAtDifference(r.expected, r.actual, row[1]!.length, row[2]!.length);
    });
    text += formatTable(header, rows);
  }
  for (const r of results.filter((result) => !result.passed)) {
    const where = `${file}:${r.testCase.line}: FAIL `;
    text += `${where}${truncate(printable(r.testCase.name), TEST_OUTPUT_COLUMNS - where.length)}\n`;
    text += `  expected ${r.expected}\n  got      ${r.actual}\n`;
  }
  for (const r of results) {
    for (const warning of r.warnings) text += `${formatWarning(file, r.testCase.line, warning)}\n`;
  }
  return text;
}

/** `policy.test.yaml:12: warning: claim "scopes" is read by no issuer of the policy; did you mean "scope"? [claim_unread]` */
function formatWarning(file: string, line: number, warning: TestWarning): string {
  return `${file}:${line}: warning: ${warning.message} [${warning.code}]`;
}

/** The last line: `N passed, M failed`, then warnings and unusable files when there are any. */
export function formatSummary(totals: TestTotals, options: TestRunOptions): string {
  let text = '';
  if (options.run !== undefined) {
    text += `--run ${JSON.stringify(options.run)}: ${totals.selected} of ${plural(totals.cases, 'case')} selected\n`;
  }
  text += `${totals.passed} passed, ${totals.failed} failed`;
  if (totals.warnings > 0) {
    text += `, ${plural(totals.warnings, 'warning')}${options.strict ? ' (--strict: the run fails)' : ''}`;
  }
  if (totals.unusableFiles > 0) {
    text += `, ${plural(totals.unusableFiles, 'test file')} could not be run`;
  }
  return text + '\n';
}

/** One case as `authz test --json` prints it. */
export interface TestCaseReport {
  readonly file: string;
  /** 1-based line of the case in the test file. */
  readonly line: number;
  readonly name: string;
  readonly request: {
    readonly method: string;
    /** The path, with its query string if any. */
    readonly target: string;
    readonly host?: string;
    readonly service?: string;
    /** The case's `request.scheme`, when it gives one. */
    readonly scheme?: string;
    /** Present (true) when the case says the request carries a valid DPoP proof. */
    readonly dpop_proof?: true;
    /** Present (true) when the case says the connection presents the token's certificate. */
    readonly client_certificate?: true;
  };
  /** The expectation in one line, e.g. `403 insufficient_scope scope="transfer:funds"`. */
  readonly expected: string;
  /** What the policy did, in the same terms. */
  readonly actual: string;
  readonly passed: boolean;
  readonly warnings: readonly TestWarning[];
}

/** What `authz test --json` prints. `ok` is whether the command exits 0. */
export interface TestRunReport {
  readonly ok: boolean;
  readonly strict: boolean;
  /** The `--run` pattern, or null: every case. */
  readonly run: string | null;
  readonly passed: number;
  readonly failed: number;
  readonly warnings: number;
  readonly selected: number;
  readonly cases: number;
  readonly files: readonly (
    | {
        readonly file: string;
        readonly policy: string;
        readonly clock: string;
        readonly cases: number;
        readonly results: readonly TestCaseReport[];
      }
    | {
        readonly file: string;
        readonly error: {
          readonly what: 'test_file' | 'policy';
          readonly code: string;
          readonly problems: readonly PolicyProblem[];
        };
      }
  )[];
}

/** The `--json` report of a run. */
export function testRunReport(
  runs: readonly TestFileRun[],
  totals: TestTotals,
  options: TestRunOptions,
): TestRunReport {
  const { ok, passed, failed, warnings, selected, cases } = totals;
  return {
    ok,
    strict: options.strict,
    run: options.run ?? null,
    passed,
    failed,
    warnings,
    selected,
    cases,
    files: runs.map((run) =>
      run.kind === 'unusable'
        ? { file: run.file, error: { what: run.what, code: run.code, problems: run.problems } }
        : {
            file: run.file,
            policy: run.policyFile,
            clock: run.clock,
            cases: run.cases,
            results: run.results.map((result) => caseReport(run.file, result)),
          },
    ),
  };
}

function caseReport(file: string, result: PolicyTestResult): TestCaseReport {
  const { name, line, request } = result.testCase;
  return {
    file,
    line,
    name,
    request: {
      method: request.method,
      target: request.target,
      ...(request.host === undefined ? {} : { host: request.host }),
      ...(request.serviceName === undefined ? {} : { service: request.serviceName }),
      ...(request.scheme === undefined ? {} : { scheme: request.scheme }),
      ...(request.dpopProof === true ? { dpop_proof: true } : {}),
      ...(request.clientCertificate === true ? { client_certificate: true } : {}),
    },
    expected: result.expected,
    actual: result.actual,
    passed: result.passed,
    warnings: result.warnings,
  };
}

/**
 * Cuts the cells of every column but the last so that a row fits `columns` (two spaces between columns,
 * as `formatTable` lays them out). The first column (the case names) gives way first, down to
 * `NAME_COLUMN`; then the others (expected and actual, which the failures below the table repeat in
 * full), the widest first, down to `MIN_CUT_COLUMN`; then the names again, down to `MIN_CUT_COLUMN`. A
 * cut cell ends with `…`. A table that fits is left as it is.
 */
export function fitColumns(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  columns: number,
): string[][] {
  const widths = header.map((title, c) =>
    Math.max(title.length, ...rows.map((row) => (row[c] ?? '').length)),
  );
  const last = widths.length - 1;
  const caps = widths.slice(0, last);
  const budget = columns - 2 * last - (widths[last] ?? 0);
  const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
  if (caps.length > 0 && sum(caps) > budget) {
    caps[0] = Math.max(Math.min(caps[0]!, NAME_COLUMN), budget - sum(caps.slice(1)));
  }
  if (sum(caps) > budget) {
    const room = budget - (caps[0] ?? 0);
    const middle = caps.slice(1);
    let cap = Math.max(...middle, 0);
    while (cap > MIN_CUT_COLUMN && sum(middle.map((width) => Math.min(width, cap))) > room) cap--;
    for (let c = 1; c < caps.length; c++) caps[c] = Math.min(caps[c]!, cap);
  }
  if (caps.length > 0 && sum(caps) > budget) {
    caps[0] = Math.max(MIN_CUT_COLUMN, budget - sum(caps.slice(1)));
  }
  return rows.map((row) =>
    row.map((cell, c) => (c === last ? cell : truncate(cell, caps[c] ?? cell.length))),
  );
}

/**
 * A failed case's expected and actual values cut to `expectedWidth` and `actualWidth` characters so that
 * they show where they differ. Cut at the end, two long values that differ only past the cut would read
 * the same (`403 insufficient_scope scope="transfer…` twice); then each is cut around the first character
 * where they differ instead, with `…` where text is left out: `…everything-a account:c"`. Values that fit,
 * or whose ends already differ, are cut at the end as before.
 */
export function cutAtDifference(
  expected: string,
  actual: string,
  expectedWidth: number,
  actualWidth: number,
): [string, string] {
  const ends: [string, string] = [truncate(expected, expectedWidth), truncate(actual, actualWidth)];
  if (expected === actual || ends[0] !== ends[1]) return ends;
  let first = 0;
  while (expected[first] === actual[first]) first++;
  // Both from the same character, a little before the difference; earlier still when the ends of the
  // texts leave room.
  const context = Math.min(DIFFERENCE_CONTEXT, Math.floor(Math.min(expectedWidth, actualWidth) / 2));
  const from = Math.max(
    0,
    Math.min(first - context, expected.length - (expectedWidth - 1), actual.length - (actualWidth - 1)),
  );
  return [cutFrom(expected, from, expectedWidth), cutFrom(actual, from, actualWidth)];
}

/** How many characters before the first difference a cell cut around it keeps, at least (half, if narrow). */
const DIFFERENCE_CONTEXT = 12;

/** `text` from `start` on, cut to `width` characters, with `…` where cut. */
function cutFrom(text: string, start: number, width: number): string {
  if (start === 0) return truncate(text, width);
  return `…${truncate(text.slice(start), width - 1)}`;
}

/** How wide the case names stay while the other columns are cut. */
const NAME_COLUMN = 54;
/** How narrow a cut column may get. */
const MIN_CUT_COLUMN = 24;

/** The text cut to `width` characters, the last one `…`, when it is longer. */
function truncate(text: string, width: number): string {
  if (text.length <= width) return text;
  return width <= 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** `1 case`, `2 cases`. */
function plural(count: number, what: string): string {
  return `${count} ${what}${count === 1 ? '' : 's'}`;
}
