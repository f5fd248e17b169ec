/**
 * Route patterns compared with each other, for the policy checks (`policy-findings.ts`): which patterns
 * match every path another one does, and which match every path there is. Deciding never uses these.
 */

/** A route pattern as a list of segment kinds: what the matcher in `route-pattern.ts` does with each. */
export type ShapeSegment =
  | { readonly kind: 'literal'; readonly text: string } // exact, or '' for a trailing slash
  | { readonly kind: 'param' } // `{name}`: one non-empty segment
  | { readonly kind: 'rest' }; // `/**` last: nothing, or `/` and anything

/** Splits a compiled (so valid) pattern into segments; `/` is one empty literal, as the path `/` is. */
export function patternShape(pattern: string): ShapeSegment[] {
  return pattern
    .slice(1)
    .split('/')
    .map((text) => {
      if (text === '**') return { kind: 'rest' };
      if (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(text)) return { kind: 'param' };
      return { kind: 'literal', text };
    });
}

/**
 * Whether every path the `later` pattern matches is matched by `earlier`. Sound by construction: each
 * case is one where the earlier segment accepts every value the later one can take, and anything else
 * counts as not covered.
 */
export function patternCovers(earlier: readonly ShapeSegment[], later: readonly ShapeSegment[]): boolean {
  for (let i = 0; ; i++) {
    const e = earlier[i];
    const l = later[i];
    if (e === undefined) return l === undefined; // the later path would be longer
    if (e.kind === 'rest') return true; // matches whatever follows, including nothing
    if (l === undefined) return false; // the earlier pattern needs more segments
    if (l.kind === 'rest') return false; // arbitrarily many segments, which only a rest covers
    if (e.kind === 'literal') {
      if (l.kind !== 'literal' || l.text !== e.text) return false;
    } else if (l.kind === 'literal' && l.text === '') {
      return false; // a parameter never matches the empty segment of a trailing slash
    }
  }
}

/** Same segments, parameter names aside: the two patterns match exactly the same paths. */
export function sameShape(a: readonly ShapeSegment[], b: readonly ShapeSegment[]): boolean {
  return (
    a.length === b.length &&
    a.every((segment, i) => {
      const other = b[i]!;
      if (segment.kind !== other.kind) return false;
      return segment.kind !== 'literal' || segment.text === (other as typeof segment).text;
    })
  );
}

/**
 * Whether a pattern takes every path below the root, or below every first segment: `/**`, `/{x}/**`,
 * `/{x}/{y}/**` (parameters only, then the rest). Such a route answers for paths nobody has written yet.
 */
export function isCatchAll(shape: readonly ShapeSegment[]): boolean {
  return shape.at(-1)?.kind === 'rest' && shape.slice(0, -1).every((segment) => segment.kind === 'param');
}
