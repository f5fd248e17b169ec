const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

/**
 * Reads an RFC 3339 date-time with its time zone, e.g. `2026-11-27T12:00:00Z`, as milliseconds since the
 * epoch; undefined for anything else. `Date.parse` alone accepts too much (local times, `2026`, prose),
 * and a clock that silently means something else makes `max_age` checks lie.
 */
export function parseInstant(value: string): number | undefined {
  if (!RFC3339.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Seconds since the epoch as `2026-11-27T12:00:00Z` (whole seconds, UTC). */
export function formatEpochSeconds(seconds: number): string {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
