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
