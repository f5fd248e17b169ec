/** One line of the bench's table. Empty strings print as "—". */
export interface ResultRow {
  readonly scenario: string;
  readonly ours: string;
  readonly limit: string;
  readonly ratio: string;
  readonly target: string;
  /** "yes", "no", or empty for figures shown for information. */
  readonly met: string;
}

const COLUMNS = [
  ['scenario', 'scenario'],
  ['ours', 'ours'],
  ['limit', 'limit / baseline'],
  ['ratio', 'ratio'],
  ['target', 'target'],
  ['met', 'met?'],
] as const;

/** A Markdown table with padded columns: readable in a terminal, pasteable into docs/performance.md. */
export function markdownTable(rows: readonly ResultRow[]): string {
  const cells = rows.map((row) => COLUMNS.map(([key]) => (row[key] === '' ? '—' : row[key])));
  const header = COLUMNS.map(([, title]) => title);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i]!.length)));
  const line = (values: readonly string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)].join('\n');
}

/** 12345.6 → "12,346". */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Milliseconds with two significant decimals below 10 ms. */
export function ms(value: number): string {
  return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}

/** 0.553 → "55%". */
export function percent(value: number): string {
  return `${Math.round(value * 100)}%`;
}

/** "yes" or "no"; empty (shown as "—") when the figure is missing. */
export function met(value: boolean | undefined): string {
  return value === undefined ? '' : value ? 'yes' : 'no';
}
