/**
 * The label value that stands in for values past a metric's budget. Parenthesised so that it cannot be
 * mistaken for a route name, a reason code or an issuer URL.
 */
export const OTHER_LABEL_VALUE = '(other)';

/**
 * Longest label value kept, in UTF-16 code units. Route names are bounded by the policy (a pattern is at
 * most 1024 characters), issuers and file paths are not: this keeps one odd value from making every scrape
 * heavy. Longer values are cut, not dropped, so they still tell an operator where to look.
 */
export const MAX_LABEL_VALUE_LENGTH = 1024;

/** `value`, cut to {@link MAX_LABEL_VALUE_LENGTH} without splitting a surrogate pair. */
export function boundLabelValue(value: string): string {
  if (value.length <= MAX_LABEL_VALUE_LENGTH) return value;
  const cut = value.slice(0, MAX_LABEL_VALUE_LENGTH);
  const last = cut.charCodeAt(cut.length - 1);
  // A lone high surrogate would render as a replacement character and no longer match the source.
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/**
 * Caps how many distinct label combinations one metric can create. Every combination is a time series kept
 * in memory here, in Prometheus and in every dashboard query, for the life of the process: counters never
 * forget one. The labels this service uses are bounded in practice (route names and issuers come from the
 * policy, reasons from a closed set), but a policy can grow across hot reloads, and a wiring mistake that
 * passed a request path as a route would otherwise grow memory with every distinct URL an attacker sends.
 *
 * Up to `limit` combinations are kept as given. Past it, a new combination has its `fold` labels replaced
 * by {@link OTHER_LABEL_VALUE} one at a time, in order, until it matches a series that already exists;
 * a partly folded combination may still create a series within a small headroom above `limit` (so that,
 * for example, `route="(other)"` keeps its `reason`), and the completely folded one always may. The series
 * count is thus at most `limit + headroom` plus one per combination of the labels that are never folded,
 * which callers keep to small closed sets (an outcome). Combinations already seen are never evicted:
 * a counter that vanished would read as a reset.
 */
export class LabelBudget<Name extends string> {
  private readonly seen = new Set<string>();
  private readonly headroom: number;

  /**
   * @param labelNames every label of the metric, in a fixed order (the identity of a combination).
   * @param fold the labels that may be replaced by `(other)`, most expendable first.
   * @param limit combinations kept as given; a positive integer.
   * @throws RangeError when `limit` is not a positive integer, or `fold` is empty or names an unknown label.
   */
  constructor(
    private readonly labelNames: readonly Name[],
    private readonly fold: readonly Name[],
    private readonly limit: number,
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`the label budget must be a positive integer, not ${limit}`);
    }
    if (fold.length === 0) throw new RangeError('a label budget needs at least one label to fold');
    const unknown = fold.find((name) => !labelNames.includes(name));
    if (unknown !== undefined) throw new RangeError(`cannot fold unknown label "${unknown}"`);
    // A tenth: enough for (other) to keep its closed-set labels, small next to the limit itself.
    this.headroom = Math.ceil(limit / 10);
  }

  /** How many distinct combinations have been admitted so far. */
  get size(): number {
    return this.seen.size;
  }

  /**
   * The labels to record under: `labels` with every value bounded in length, and folded to `(other)`
   * when the budget is spent. Records the result as seen.
   */
  admit(labels: Readonly<Record<Name, string>>): Record<Name, string> {
    let candidate = {} as Record<Name, string>;
    for (const name of this.labelNames) candidate[name] = boundLabelValue(labels[name]);
    for (let folded = 0; ; folded += 1) {
      const key = JSON.stringify(this.labelNames.map((name) => candidate[name]));
      if (this.seen.has(key)) return candidate;
      const room = folded === 0 ? this.limit : this.limit + this.headroom;
      if (this.seen.size < room || folded === this.fold.length) {
        this.seen.add(key);
        return candidate;
      }
      candidate = { ...candidate, [this.fold[folded]]: OTHER_LABEL_VALUE };
    }
  }
}
