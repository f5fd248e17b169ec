import type { Outcome } from './traffic.js';

/** One required property of a scenario's figures, judged. */
export interface Check {
  readonly ok: boolean;
  /** What was required and what was measured, e.g. `valid requests failed: 3 (must be 0)`. */
  readonly text: string;
}

/** What a scenario reports: one line of figures, the checks, and a row for the summary table. */
export interface ScenarioResult {
  /** 1 to 8, as in docs/reliability.md. */
  readonly number: number;
  readonly title: string;
  /** The figures on one line. */
  readonly line: string;
  readonly checks: readonly Check[];
  /** Requests sent through Envoy. */
  readonly requests: number;
  /** Requests that got an answer they must not get (the scenario's own definition, in its line). */
  readonly failures: number;
  readonly seconds: number;
}

/** `actual` must not exceed `limit`. */
export function atMost(what: string, actual: number, limit: number): Check {
  return { ok: actual <= limit, text: `${what}: ${fmt(actual)} (at most ${fmt(limit)})` };
}

/** `actual` must be at least `floor`. */
export function atLeast(what: string, actual: number, floor: number): Check {
  return { ok: actual >= floor, text: `${what}: ${fmt(actual)} (at least ${fmt(floor)})` };
}

/** `actual` must equal `expected`. */
export function exactly(what: string, actual: number, expected: number): Check {
  return { ok: actual === expected, text: `${what}: ${fmt(actual)} (must be ${fmt(expected)})` };
}

/** The checks that failed, as text (empty when all passed). */
export function failedChecks(result: ScenarioResult): string[] {
  return result.checks.filter((check) => !check.ok).map((check) => check.text);
}

/** The `p`-th percentile (0..100) of `values`, nearest rank; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** Milliseconds, e.g. `4.2 ms`, `1,002 ms`. */
export function ms(value: number): string {
  if (Number.isNaN(value)) return '–';
  return value < 100 ? `${value.toFixed(1)} ms` : `${fmt(Math.round(value))} ms`;
}

/** A number with thousands separators; fractions to one decimal. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return Number.isInteger(value)
    ? value.toLocaleString('en-US')
    : value.toLocaleString('en-US', { maximumFractionDigits: 1 });
}

/** Counts of statuses, e.g. `200×812 503×3 (ext_authz failed)`, for lines and failure messages. */
export function statusCounts(outcomes: readonly Outcome[]): string {
  const counts = new Map<string, number>();
  for (const { status, error } of outcomes) {
    const key =
      status === 0
        ? error === 'timeout'
          ? 'timeout'
          : 'error'
        : status >= 500 && error !== undefined
          ? `${status} (${error})`
          : String(status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([status, count]) => `${status}×${count}`).join(' ') || 'none';
}

/** Latencies as `p99 …, max …`, e.g. for the valid requests of a scenario's line. */
export function latencySummary(latencies: readonly number[]): string {
  return `p99 ${ms(percentile(latencies, 99))}, max ${ms(Math.max(...latencies))}`;
}

/** Outcomes counted by kind and status, e.g. `expired 200 2, valid 503 1`. */
export function describeKindsAndStatuses(outcomes: readonly Outcome[]): string {
  return describeCounts(countBy(outcomes.map((outcome) => `${outcome.kind} ${outcome.status}`)));
}

/** How often each key occurs. */
export function countBy(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/** Counts as `key n, key n`. */
export function describeCounts(counts: ReadonlyMap<string, number>): string {
  return [...counts].map(([key, count]) => `${key} ${fmt(count)}`).join(', ');
}

/** The summary: one Markdown row per scenario. */
export function markdownTable(results: readonly ScenarioResult[]): string {
  const rows = [
    ['#', 'Scenario', 'Requests', 'Failures', 'Time', 'Checks', 'Figures'],
    ['-:', '-', '-:', '-:', '-:', '-', '-'],
    ...results.map((result) => [
      String(result.number),
      result.title,
      fmt(result.requests),
      fmt(result.failures),
      `${Math.round(result.seconds)} s`,
      result.checks.every((check) => check.ok)
        ? `all ${result.checks.length} met`
        : `${result.checks.filter((check) => !check.ok).length} of ${result.checks.length} failed`,
      result.line.replaceAll('|', '\\|'),
    ]),
  ];
  return rows.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
