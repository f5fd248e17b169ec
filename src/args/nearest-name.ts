/**
 * The known name a mistyped one most likely meant, for "did you mean": the nearest within a few edits (at
 * most one for names of up to four letters, two for longer ones; an edit is a letter added, removed,
 * changed, or two neighbours swapped), else the only known name that starts with what was typed. The
 * nearest wins; on a tie, the first in `names`. Undefined when nothing is that close.
 */
export function nearestName(typed: string, names: readonly string[]): string | undefined {
  const allowed = typed.length <= 4 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(typed, name);
    if (distance <= allowed && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  if (best !== undefined) return best.name;
  const extending = typed === '' ? [] : names.filter((name) => name.startsWith(typed));
  return extending.length === 1 ? extending[0] : undefined;
}

/**
 * The optimal string alignment distance (Damerau-Levenshtein without repeated edits of one substring):
 * insertions, deletions, substitutions and transpositions of adjacent characters cost 1 each.
 */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = distance;
    }
  }
  return rows[a.length]![b.length]!;
}
