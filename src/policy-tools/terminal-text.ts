/**
 * Text as is when it is plain printable ASCII, else JSON-quoted. Values from policies, test files and
 * tokens end up on a terminal: escaped, none of them can move the cursor or recolour the screen.
 */
export function printable(text: string): string {
  return /^[\x20-\x7E]*$/.test(text) ? text : JSON.stringify(text);
}

/** Left-aligned columns two spaces apart, a header row first; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, c) =>
    Math.max(title.length, ...rows.map((row) => (row[c] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
