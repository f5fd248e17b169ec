import type { DpopProofPolicy, ReplayLimits } from './compiled-policy.js';
import { formatDuration, parseDurationSeconds } from './duration.js';
import { POLICY_DEFAULTS } from './policy-defaults.js';
import type { DpopDocument, PathSegment, PolicyDocument } from './policy-document.js';
import type { Report } from './problem-locator.js';

/** The defaults of `dpop` (docs/sender-constraints.md), under the top level's settings. */
export const DEFAULT_DPOP: DpopProofPolicy = Object.freeze({
  algorithms: POLICY_DEFAULTS.dpopAlgorithms,
  maxAgeSeconds: POLICY_DEFAULTS.dpopMaxAgeSeconds,
  clockToleranceSeconds: POLICY_DEFAULTS.dpopClockToleranceSeconds,
  nonce: 'off',
  nonceLifetimeSeconds: POLICY_DEFAULTS.dpopNonceLifetimeSeconds,
});

/**
 * `dpop` at one level over the level above (the defaults, or the top level's): each key it sets wins. A
 * duration out of its range is reported where it is written.
 */
export function compileDpop(
  entry: DpopDocument | undefined,
  at: PathSegment[],
  above: DpopProofPolicy,
  report: Report,
): DpopProofPolicy {
  if (entry === undefined) return above;
  const d = POLICY_DEFAULTS;
  const duration = (key: string, value: unknown, fallback: number, min: number, max: number): number => {
    if (value === undefined) return fallback;
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined || seconds < min || seconds > max) {
      report(
        [...at, key],
        `must be a duration from ${formatDuration(min)} to ${formatDuration(max)} (whole seconds, or 30s / 5m)`,
      );
      return fallback;
    }
    return seconds;
  };
  return Object.freeze({
    algorithms: entry.algorithms === undefined ? above.algorithms : Object.freeze([...entry.algorithms]),
    maxAgeSeconds: duration(
      'max_age',
      entry.max_age,
      above.maxAgeSeconds,
      d.minDpopMaxAgeSeconds,
      d.maxDpopMaxAgeSeconds,
    ),
    clockToleranceSeconds: duration(
      'clock_tolerance',
      entry.clock_tolerance,
      above.clockToleranceSeconds,
      0,
      d.maxDpopClockToleranceSeconds,
    ),
    nonce: entry.nonce ?? above.nonce,
    nonceLifetimeSeconds: duration(
      'nonce_lifetime',
      entry.nonce_lifetime,
      above.nonceLifetimeSeconds,
      d.minDpopNonceLifetimeSeconds,
      d.maxDpopNonceLifetimeSeconds,
    ),
  });
}

/**
 * The replay store's limits (top-level `dpop`): its size, and the share of it one key and one user may
 * hold, each at most the size. Shares default to a fraction of the size, at least 1.
 */
export function compileReplayLimits(dpop: PolicyDocument['dpop'], report: Report): ReplayLimits {
  const d = POLICY_DEFAULTS;
  const total = dpop?.replay_cache_size ?? d.dpopReplayCacheSize;
  const share = (key: 'replay_cache_per_key' | 'replay_cache_per_subject', fraction: number): number => {
    const value = dpop?.[key];
    if (value === undefined) return Math.max(1, Math.floor(total * fraction));
    if (value > total) {
      report(['dpop', key], `must be at most dpop.replay_cache_size (${total})`);
      return total;
    }
    return value;
  };
  return Object.freeze({
    total,
    perKey: share('replay_cache_per_key', d.dpopReplayShareOfKey),
    perSubject: share('replay_cache_per_subject', d.dpopReplayShareOfSubject),
  });
}
