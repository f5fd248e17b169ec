const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration given as whole seconds (`30`) or a number with one unit (`30s`, `10m`, `1h`, `7d`).
 * Returns seconds, or undefined when the text is not a duration. No fractions, no negatives: a policy or
 * command line that means something else should be refused, not guessed at.
 */
export function parseDurationSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,9})([smhd]?)$/.exec(value.trim());
  if (match === null) return undefined;
  const [, amount, unit] = match;
  return Number(amount) * (unit === '' || unit === undefined ? 1 : (UNIT_SECONDS[unit] ?? NaN));
}

/**
 * Parses a duration that may be shorter than a second: whatever `parseDurationSeconds` takes, or a number
 * of milliseconds (`800ms`). Returns milliseconds, or undefined when the text is not a duration. Only
 * settings where a fraction of a second means something take this form (docs/policy.md, "Every key").
 */
export function parseDurationMilliseconds(value: unknown): number | undefined {
  if (typeof value === 'string') {
    const match = /^(\d{1,9})ms$/.exec(value.trim());
    if (match !== null) return Number(match[1]);
  }
  const seconds = parseDurationSeconds(value);
  return seconds === undefined ? undefined : seconds * 1000;
}

/** Whether `value` is written in milliseconds (`800ms`): for a clear refusal where only seconds are taken. */
export function isMillisecondsDuration(value: unknown): boolean {
  return typeof value === 'string' && /^\d{1,9}ms$/.test(value.trim());
}

/**
 * A number of seconds in the largest unit that holds it exactly (`86400` is `1d`, `90` is `90s`), for
 * messages and explanations. Milliseconds are written `ms` when `milliseconds` is set.
 */
export function formatDuration(amount: number, milliseconds = false): string {
  if (milliseconds && amount % 1000 !== 0) return `${amount}ms`;
  const seconds = milliseconds ? amount / 1000 : amount;
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds > 0 && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
