import { setTimeout as delay } from 'node:timers/promises';
import { generateDpopKeys } from '../../test/kit/dpop-proofs.js';
import { generateTestKey } from '../../test/kit/tokens.js';
import { boundTo, expiredClaims, mfaLoginClaims, signToken } from '../fault-tokens.js';
import { atMost, describeKindsAndStatuses, exactly, fmt, latencySummary } from '../figures.js';
import { balanceRead, defineScenario, dpopRequest, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
import { startMixedTraffic, type TrafficRequest } from '../traffic.js';

/** What each kind of request must be answered. */
const EXPECTED: Readonly<Record<string, number>> = {
  valid: 200,
  transfer: 201,
  'no-token': 401,
  'bad-signature': 401,
  expired: 401,
  'without-scope': 403,
};
const MIX = [
  'valid',
  'valid',
  'valid',
  'valid',
  'transfer',
  'no-token',
  'bad-signature',
  'expired',
  'without-scope',
  'valid',
] as const;
const SENDERS = 20;
const WARM_UP_MS = 5_000; // before the first reading: lazy initialisation is not growth
/**
 * RSS growth is judged from a third of the soak on: V8 sizes its young generation to the allocation rate
 * in the first minutes (on Node 24 without a memory limit it grows to 128 MB, where Node 20 stopped at 32;
 * under a container's memory limit Node sizes it down), a step to a steady size that is not memory the
 * server keeps. A leak keeps growing after it.
 */
const RSS_BASELINE_SHARE = 1 / 3;
const SAMPLE_MS = 5_000; // how often RSS and descriptors are read
/** Growth over the soak that counts as a leak. */
const FD_GROWTH_LIMIT = 16;
const RSS_GROWTH_LIMIT_MIB = 64;

/**
 * Scenario 5. A soak at a fixed rate: balance reads, small transfers, and refusals (no token, bad
 * signature, expired, missing scope), every request a fresh token (transfers, as the demo policy requires,
 * a DPoP-bound one of the sender's key with a fresh proof, so the proof replay cache is soaked too), the
 * keys refreshed every `jwks_cache_ttl` (10 s) all along. authz's resident memory (VmRSS) and open file
 * descriptors are read after a warm-up, every 5 s, and at the end. Required: no request fails, neither
 * open descriptors (from the warm-up) nor RSS (from a third of the soak: {@link RSS_BASELINE_SHARE}) grows
 * beyond a small bound.
 */
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.soak;
  if (settings === undefined) throw new Error(`the ${profile.name} profile runs no soak`);
  const started = Date.now();
  const key = await generateTestKey('faults-soak');
  const impostor = await generateTestKey(key.kid); // published nowhere: its tokens have a bad signature
  const senderKeys = await generateDpopKeys(SENDERS);
  const issuer = { cacheTtlSeconds: 10, refreshCooldownSeconds: 5 };
  return withFaultStack({ target, key, issuer }, async (stack) => {
    const build = async (kind: (typeof MIX)[number], n: number): Promise<TrafficRequest> => {
      switch (kind) {
        case 'valid':
          return balanceRead(kind, await signToken(key));
        case 'no-token':
          return balanceRead(kind, undefined);
        case 'bad-signature':
          return balanceRead(kind, await signToken(impostor));
        case 'expired':
          return balanceRead(kind, await signToken(key, { claims: expiredClaims() }));
        case 'transfer':
        case 'without-scope': {
          const scope = kind === 'transfer' ? 'view:balance transfer:funds' : 'view:balance';
          const senderKey = senderKeys[n % SENDERS]!;
          const claims = {
            sub: `faults-soak-${n % SENDERS}`,
            scope,
            ...mfaLoginClaims(),
            ...boundTo(senderKey),
          };
          const token = await signToken(key, { claims });
          return dpopRequest(stack.baseUrl, senderKey, token, {
            kind,
            method: 'POST',
            path: '/transfer',
            json: { to: 'faults-soak-bank', amount: 0.01 },
          });
        }
      }
    };
    const traffic = startMixedTraffic({ baseUrl: stack.baseUrl, rate: profile.rate, mix: MIX, build });
    const trafficStarted = Date.now();
    const authz = stack.authz();
    await delay(Math.min(WARM_UP_MS, (settings.seconds * 1000) / 5));
    const before = { rssKib: authz.rssKib(), fds: authz.openFds() };
    let maxRssKib = before.rssKib;
    let maxFds = before.fds;
    const endAt = trafficStarted + settings.seconds * 1000;
    const baselineAt = trafficStarted + settings.seconds * 1000 * RSS_BASELINE_SHARE;
    let baseline: { rssKib: number; seconds: number } | undefined;
    let nextReport = Date.now() + 60_000;
    while (Date.now() < endAt) {
      await delay(Math.min(SAMPLE_MS, Math.max(0, endAt - Date.now())));
      maxRssKib = Math.max(maxRssKib, authz.rssKib());
      maxFds = Math.max(maxFds, authz.openFds());
      if (baseline === undefined && Date.now() >= baselineAt) {
        baseline = { rssKib: authz.rssKib(), seconds: Math.round((Date.now() - trafficStarted) / 1000) };
      }
      if (Date.now() >= nextReport) {
        nextReport += 60_000;
        progress(
          `  S5: ${Math.round((Date.now() - started) / 1000)} s, ${fmt(traffic.sent)} requests, ` +
            `RSS ${mib(authz.rssKib())}, ${authz.openFds()} fds`,
        );
      }
    }
    const outcomes = await traffic.stop();
    const after = { rssKib: authz.rssKib(), fds: authz.openFds() };
    const rssFrom = baseline ?? { rssKib: before.rssKib, seconds: Math.round(WARM_UP_MS / 1000) };

    const failed = outcomes.filter((outcome) => outcome.status !== EXPECTED[outcome.kind]);
    const valid = outcomes.filter((outcome) => outcome.kind === 'valid').map((outcome) => outcome.ms);
    const line =
      `${fmt(outcomes.length)} requests in ${Math.round((Date.now() - trafficStarted) / 1000)} s / ${fmt(failed.length)} failed` +
      (failed.length > 0 ? ` (${describeKindsAndStatuses(failed)})` : '') +
      `; authz RSS ${mib(before.rssKib)} after the warm-up, ${mib(rssFrom.rssKib)} at ${rssFrom.seconds} s` +
      ` → ${mib(after.rssKib)} (max ${mib(maxRssKib)})` +
      `; open fds ${before.fds} → ${after.fds} (max ${maxFds})` +
      `; valid latency ${latencySummary(valid)}` +
      `; JWKS fetches ${fmt(stack.jwks.requests)}`;
    return {
      line,
      checks: [
        exactly('requests failed', failed.length, 0),
        atMost('growth of open file descriptors', after.fds - before.fds, FD_GROWTH_LIMIT),
        atMost(
          `growth of RSS from ${rssFrom.seconds} s (MiB)`,
          Math.round((after.rssKib - rssFrom.rssKib) / 1024),
          RSS_GROWTH_LIMIT_MIB,
        ),
      ],
      requests: outcomes.length,
      failures: failed.length,
    };
  });
}

function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

export const SCENARIO = defineScenario({
  number: 5,
  title: 'Soak at a fixed rate',
  requirement:
    'fails no request over the soak, and neither memory nor file descriptors grow beyond a small bound',
  runsIn: (profile) => profile.soak !== undefined,
  measure,
});
