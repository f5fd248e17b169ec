import { formatPolicyProblem } from '../policy/policy-error.js';
import type { TestFileRun, TestRunOptions, TestTotals } from './test-report.js';

/**
 * A run as JUnit XML (`authz test --junit FILE`), in the shape CI systems read (the Ant / Jenkins
 * schema): `<testsuites>`, one `<testsuite>` per test file, one `<testcase>` per selected case with a
 * `<failure>` when its expectation is not met. A file that cannot be used is a suite with one
 * `<testcase>` holding an `<error>`. Warnings go in the case's `<system-out>`; under `--strict` they are
 * also a `<failure type="warning">`, as they fail the run. Pure.
 */
export function junitReport(
  runs: readonly TestFileRun[],
  totals: TestTotals,
  options: TestRunOptions,
): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const failures = (run: TestFileRun) =>
    run.kind === 'unusable'
      ? 0
      : run.results.filter((r) => !r.passed || (options.strict && r.warnings.length > 0)).length;
  const allFailures = runs.reduce((sum, run) => sum + failures(run), 0);
  lines.push(
    `<testsuites name="authz test" tests="${totals.selected + totals.unusableFiles}" failures="${allFailures}" errors="${totals.unusableFiles}">`,
  );
  for (const run of runs) {
    if (run.kind === 'unusable') {
      const what = run.what === 'test_file' ? 'the test file cannot be used' : 'its policy cannot be used';
      lines.push(
        `  <testsuite ${attributes({ name: run.file, tests: 1, failures: 0, errors: 1 })}>`,
        `    <testcase ${attributes({ name: run.file, classname: run.file, file: run.file })}>`,
        `      <error ${attributes({ message: `${what} (${run.code})`, type: run.code })}>${text(
          run.problems.map(formatPolicyProblem).join('\n'),
        )}</error>`,
        '    </testcase>',
        '  </testsuite>',
      );
      continue;
    }
    lines.push(
      `  <testsuite ${attributes({ name: run.file, tests: run.results.length, failures: failures(run), errors: 0 })}>`,
    );
    for (const result of run.results) {
      const { name, line } = result.testCase;
      lines.push(`    <testcase ${attributes({ name, classname: run.file, file: run.file, line })}>`);
      if (!result.passed) {
        const message = `expected ${result.expected}, got ${result.actual}`;
        lines.push(
          `      <failure ${attributes({ message, type: 'mismatch' })}>${text(
            `${run.file}:${line}: ${message}`,
          )}</failure>`,
        );
      }
      const warnings = result.warnings.map((w) => `${run.file}:${line}: warning: ${w.message} [${w.code}]`);
      if (options.strict && warnings.length > 0) {
        const message = `${warnings.length} warning${warnings.length === 1 ? '' : 's'} (--strict)`;
        lines.push(
          `      <failure ${attributes({ message, type: 'warning' })}>${text(warnings.join('\n'))}</failure>`,
        );
      }
      if (warnings.length > 0) lines.push(`      <system-out>${text(warnings.join('\n'))}</system-out>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>', '');
  return lines.join('\n');
}

function attributes(values: Readonly<Record<string, string | number>>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key}="${escapeXml(String(value), true)}"`)
    .join(' ');
}

function text(value: string): string {
  return escapeXml(value, false);
}

/**
 * Text for XML 1.0 content or a double-quoted attribute. Markup characters become references; characters
 * XML 1.0 cannot carry at all (section 2.2: controls other than tab, newline and carriage return, lone
 * surrogates, U+FFFE and U+FFFF) become a visible `\uXXXX`, so that a case name from a YAML file never makes
 * the report unreadable. A carriage return is always a reference (a reader would turn it into a newline,
 * section 2.11), and in attributes so are tab and newline (or it would make them spaces, section 3.3.3).
 */
export function escapeXml(value: string, attribute: boolean): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const ch = value[i]!;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += ch + value[i + 1]!;
        i++;
        continue;
      }
      out += visible(c);
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) out += visible(c);
    else if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += attribute ? '&quot;' : ch;
    else if (c === 0x0d || ((c === 0x09 || c === 0x0a) && attribute))
      out += `&#x${c.toString(16).toUpperCase()};`;
    else if (c === 0x09 || c === 0x0a) out += ch;
    else if (c < 0x20 || c === 0xfffe || c === 0xffff) out += visible(c);
    else out += ch;
  }
  return out;
}

function visible(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}
