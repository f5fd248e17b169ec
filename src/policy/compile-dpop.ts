import { resolve } from 'node:path';
import type { DpopProofPolicy, ReplayLimits, ReplayStoreSettings } from './compiled-policy.js';
import { formatDuration, parseDurationMilliseconds, parseDurationSeconds } from './duration.js';
import { POLICY_DEFAULTS } from './policy-defaults.js';
import type { DpopDocument, PathSegment, PolicyDocument } from './policy-document.js';
import type { Report } from './problem-locator.js';
import { redisUrlProblem } from './redis-url.js';

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

const MEMORY_STORE: ReplayStoreSettings = Object.freeze({ type: 'memory' });

/**
 * The replay store (top-level `dpop.replay_store`): memory by default; Redis with its URL given (without
 * credentials) or in a file, files resolved against the policy's folder. Keys that only Redis takes are
 * refused under `type: memory`, so that a store the file seems to configure is the one in force.
 */
export function compileReplayStore(
  dpop: PolicyDocument['dpop'],
  baseDir: string,
  report: Report,
): ReplayStoreSettings {
  const entry = dpop?.replay_store;
  if (entry === undefined) return MEMORY_STORE;
  const at = ['dpop', 'replay_store'];
  const { type, ...redisOnly } = entry;
  if (type === 'memory') {
    for (const key of Object.keys(redisOnly)) report([...at, key], 'is only for type: redis');
    return MEMORY_STORE;
  }
  const d = POLICY_DEFAULTS;
  let url: { given: string } | { file: string } = { given: 'redis://invalid' };
  if ((entry.url === undefined) === (entry.url_file === undefined)) {
    report(at, 'type: redis needs exactly one of url and url_file');
  } else if (entry.url !== undefined) {
    const problem = redisUrlProblem(entry.url, 'refused');
    if (problem === undefined) url = { given: entry.url };
    else report([...at, 'url'], problem);
    // With url_file, the scheme is known only when the file is read (then a mismatch is logged, fail closed).
    if (problem === undefined && entry.ca_file !== undefined && !entry.url.startsWith('rediss:')) {
      report([...at, 'ca_file'], 'is only for a rediss:// (TLS) URL');
    }
  } else if (entry.url_file !== undefined) {
    url = { file: resolve(baseDir, entry.url_file) };
  }
  let timeoutMs: number = d.dpopReplayStoreTimeoutMs;
  if (entry.timeout !== undefined) {
    const ms = parseDurationMilliseconds(entry.timeout);
    if (ms === undefined || ms < d.minDpopReplayStoreTimeoutMs || ms > d.maxDpopReplayStoreTimeoutMs) {
      report(
        [...at, 'timeout'],
        `must be a duration from ${d.minDpopReplayStoreTimeoutMs}ms to ${d.maxDpopReplayStoreTimeoutMs}ms`,
      );
    } else timeoutMs = ms;
  }
  return Object.freeze({
    type: 'redis',
    url: Object.freeze(url),
    caFile: entry.ca_file === undefined ? undefined : resolve(baseDir, entry.ca_file),
    keyPrefix: entry.key_prefix ?? d.dpopReplayStoreKeyPrefix,
    timeoutMs,
    fallback: entry.fallback ?? 'none',
  });
}
