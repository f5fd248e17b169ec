/**
 * How long and how hard each fault scenario runs. `full` is `npm run faults` (about 20 minutes, the soak
 * alone 10); `short` is the same code in test/e2e/faults-short.test.ts (about 100 s): each scenario but
 * the soak, with shorter faults and 10 policy flips instead of 100. A scale factor
 * (FAULTS_SCALE) stretches or shrinks the timed parts of either; key-set timings (`jwks_cache_ttl`,
 * `jwks_refresh_cooldown`) and counts (policy flips, idle connections) are not scaled.
 */
export interface FaultProfile {
  readonly name: 'full' | 'short';
  /** Requests per second sent through Envoy, open loop (each on schedule, whether or not earlier ones are answered). */
  readonly rate: number;
  readonly jwksFaults: {
    readonly cacheTtlSeconds: number;
    readonly refreshCooldownSeconds: number;
    /** How long each fault lasts, in seconds, in this order. */
    readonly phaseSeconds: {
      readonly hang: number;
      readonly http500: number;
      readonly garbage: number;
      readonly huge: number;
      readonly brokenKey: number;
    };
  };
  readonly rotation: {
    readonly cacheTtlSeconds: number;
    readonly refreshCooldownSeconds: number;
    /** Traffic with the old key alone before the new key is published, in seconds. */
    readonly steadySeconds: number;
    /** From publishing the new key to signing with it, in seconds. */
    readonly publishedSeconds: number;
    /** From signing with the new key to removing the old one, in seconds. */
    readonly switchedSeconds: number;
    /** Traffic after the old key is removed, beyond the retirement bound, in seconds. */
    readonly afterBoundSeconds: number;
  };
  readonly restart: {
    /** Traffic before the first kill, and between a restart and the next kill, in seconds. */
    readonly steadySeconds: number;
    readonly kills: number;
    /** From `kill -9` to starting authz again, in seconds (a supervisor's restart delay). */
    readonly downSeconds: number;
    /** Traffic after the last restart, in seconds. */
    readonly tailSeconds: number;
  };
  readonly policyFlips: {
    readonly flips: number;
    /** How long each version stays in the file once authz has judged it, in milliseconds. */
    readonly holdMs: number;
  };
  /**
   * The soak (scenario 5); absent from the short profile, which runs no soak: a leak needs minutes to show,
   * and its other requirement (no request failed under load while keys refresh) scenarios 1, 2 and 7
   * check for their own traffic.
   */
  readonly soak?: { readonly seconds: number };
  readonly hostileClients: {
    /** The customer's valid DPoP requests a second, throughout. */
    readonly customerRate: number;
    /** The hostile client's requests a second, open loop, in each flood. */
    readonly floodRate: number;
    /** How long the quiet phase and each flood last, in seconds. */
    readonly phaseSeconds: number;
    /**
     * `dpop.replay_cache_per_key`: what a key may hold. Above what the customer's key spends within a proof
     * window (its rate times 70 s, or the whole run), below what the flood spends in its phase.
     */
    readonly sharePerKey: number;
  };
  readonly idleConnections: {
    readonly connections: number;
    readonly cacheTtlSeconds: number;
    readonly refreshCooldownSeconds: number;
    readonly floodSeconds: number;
    /** Requests per second with an unknown `kid` (the rest of `rate` are valid). */
    readonly unknownKidRate: number;
    /** Distinct unknown `kid`s, cycled through. */
    readonly distinctKids: number;
  };
  /** Scenario 8: the DPoP replay store on Redis, killed and restarted, then paused and resumed. */
  readonly replayStore: {
    /** Traffic before the kill, and after each recovery before the next fault, in seconds. */
    readonly steadySeconds: number;
    /** From `kill -9` of Redis to starting it again, in seconds. */
    readonly downSeconds: number;
    /** From SIGSTOP of Redis to SIGCONT, in seconds. */
    readonly pausedSeconds: number;
    /** Traffic after the resume (and after the second restart), in seconds. */
    readonly tailSeconds: number;
    /**
     * With `fallback: local` (a policy reload), Redis killed again for this long, in seconds; absent from
     * the short profile, which tests the fallback no further than the integration suite does.
     */
    readonly fallbackDownSeconds?: number;
  };
}

/**
 * Seconds an old key's tokens may still be accepted after the key left the issuer's set, beyond
 * `jwks_cache_ttl`: the jitter of the background refresh and the fetch itself.
 */
export const RETIREMENT_SLACK_SECONDS = 3; // 3 seconds

/**
 * The profile called `name`, its timed parts multiplied by `scale`.
 * @throws Error when `name` or `scale` is not usable, naming FAULTS_PROFILE or FAULTS_SCALE
 */
export function faultProfile(name: string, scale = 1): FaultProfile {
  if (!Number.isFinite(scale) || scale <= 0)
    throw new Error(`FAULTS_SCALE: ${scale} is not a positive number`);
  if (name !== 'full' && name !== 'short') {
    throw new Error(`FAULTS_PROFILE: "${name}" is not a profile (full, short)`);
  }
  /** The full profile's figure or the short one's: both profiles side by side, figure by figure. */
  const pick = <T>(full: T, short: T): T => (name === 'full' ? full : short);
  /** Seconds of a timed part, scaled. */
  const seconds = (value: number) => Math.max(1, Math.round(value * scale * 10) / 10);
  /** Seconds of a timed part in the full profile and in the short one, scaled. */
  const s = (full: number, short: number) => seconds(pick(full, short));
  // Key-set timings: not scaled.
  const keySet = { cacheTtlSeconds: 10, refreshCooldownSeconds: pick(5, 2) };
  return {
    name,
    rate: 100,
    jwksFaults: {
      ...keySet,
      phaseSeconds: {
        hang: s(60, 4),
        http500: s(30, 4),
        garbage: s(30, 4),
        huge: s(30, 4),
        brokenKey: s(30, 5),
      },
    },
    rotation: {
      ...keySet,
      steadySeconds: s(10, 2),
      publishedSeconds: s(5, 1),
      switchedSeconds: s(10, 2),
      afterBoundSeconds: s(10, 2),
    },
    restart: { steadySeconds: s(10, 3), kills: pick(3, 1), downSeconds: pick(1, 0.5), tailSeconds: s(10, 4) },
    policyFlips: { flips: pick(100, 10), holdMs: Math.round(pick(500, 50) * scale) },
    ...(name === 'full' ? { soak: { seconds: seconds(600) } } : {}),
    hostileClients: {
      customerRate: pick(20, 10),
      floodRate: pick(300, 200),
      phaseSeconds: s(20, 4),
      sharePerKey: pick(2000, 400),
    },
    idleConnections: {
      ...keySet,
      connections: 1000,
      floodSeconds: s(60, 6),
      unknownKidRate: 150,
      distinctKids: 1000,
    },
    replayStore: {
      steadySeconds: s(5, 1.5),
      downSeconds: s(4, 2),
      pausedSeconds: s(4, 2),
      tailSeconds: s(5, 2),
      ...(name === 'full' ? { fallbackDownSeconds: seconds(4) } : {}),
    },
  };
}
