import { setTimeout as delay } from 'node:timers/promises';
import { generateTestKey } from '../../test/kit/test-issuer.js';
import { faultPolicy, startFaultStack, waitForAllow } from '../fault-stack.js';
import {
  ecKeyOffCurve,
  expiredClaims,
  rsaKeyWithoutModulus,
  signToken,
  unpublishedKey,
} from '../fault-tokens.js';
import {
  atMost,
  countBy,
  describeCounts,
  exactly,
  fmt,
  ms,
  percentile,
  statusCounts,
  type ScenarioResult,
} from '../figures.js';
import type { KeyServerBehaviour } from '../../test/kit/key-server.js';
import { bearer, type FaultContext, type Scenario } from '../scenario.js';
import { startTraffic, type TrafficRequest } from '../traffic.js';

/** The invalid kinds of token, sent as every other request. */
const INVALID_KINDS = ['bad-signature', 'expired', 'unknown-kid', 'broken-rsa-kid', 'broken-ec-kid'] as const;
/** While the cache is being lined up with the first fault, no token makes authz fetch (see below). */
const WARM_KINDS = ['bad-signature', 'expired'] as const;

/**
 * Scenario 1. The keys are cached; then the JWKS endpoint hangs (accepts, never answers), answers 500,
 * answers garbage, answers 10 MB, and last serves a set with two keys that cannot be imported (an RSA key
 * without `n`, a P-256 key off the curve) next to the good one. Half the requests carry valid tokens, the
 * rest bad signatures, expired tokens, unknown `kid`s and tokens naming the broken keys.
 *
 * The hang starts 70 % of `jwks_cache_ttl` after the last fetch, before the background refresh (due at
 * 75–90 % of it) or the expiry, so that the first fault meets a refresh even in the short profile; until
 * then no token names an unknown `kid` (each would refetch and restart the clock).
 */
async function run({ profile, target, progress }: FaultContext): Promise<ScenarioResult> {
  const settings = profile.jwksFaults;
  const started = Date.now();
  const good = await generateTestKey('faults-good');
  const impostor = await unpublishedKey(good.kid);
  const stranger = await unpublishedKey('faults-stranger');
  const brokenRsa = rsaKeyWithoutModulus('faults-broken-rsa');
  const brokenEc = await ecKeyOffCurve('faults-broken-ec');
  const brokenRsaSigner = await unpublishedKey(brokenRsa.kid!);
  const brokenEcSigner = await unpublishedKey(brokenEc.kid!, 'ES256');

  const stack = await startFaultStack({
    target,
    keys: [good.publicJwk],
    policy: (endpoints) =>
      faultPolicy(endpoints, {
        cacheTtlSeconds: settings.cacheTtlSeconds,
        refreshCooldownSeconds: settings.refreshCooldownSeconds,
        algorithms: ['RS256', 'ES256'],
      }),
  });
  try {
    await waitForAllow(stack, `Bearer ${await signToken(good)}`);
    let warm = true;
    let unknownKids = 0;
    const request = async (kind: string): Promise<TrafficRequest> => {
      const token = await tokenOf(kind);
      return { kind, method: 'GET', path: '/balance', headers: bearer(token) };
    };
    const tokenOf = (kind: string): Promise<string> => {
      switch (kind) {
        case 'valid':
          return signToken(good);
        case 'bad-signature':
          return signToken(impostor);
        case 'expired':
          return signToken(good, { claims: expiredClaims() });
        case 'unknown-kid':
          return signToken(stranger, { header: { kid: `faults-unknown-${unknownKids++}` } });
        case 'broken-rsa-kid':
          return signToken(brokenRsaSigner);
        case 'broken-ec-kid':
          return signToken(brokenEcSigner);
        default:
          throw new Error(`no token for ${kind}`);
      }
    };
    const traffic = startTraffic({
      baseUrl: stack.baseUrl,
      rate: profile.rate,
      phase: 'warm',
      next: (n) => {
        if (n % 2 === 0) return request('valid');
        const kinds = warm ? WARM_KINDS : INVALID_KINDS;
        return request(kinds[Math.floor(n / 2) % kinds.length]!);
      },
    });
    const { jwks } = stack;
    jwks.label('warm');

    const ttlMs = settings.cacheTtlSeconds * 1000;
    while (Date.now() < jwks.lastKeysServedAt + 0.7 * ttlMs) await delay(50);
    warm = false;

    const phases: { label: string; behaviour: KeyServerBehaviour; seconds: number }[] = [
      { label: 'hang', behaviour: 'hang', seconds: settings.phaseSeconds.hang },
      { label: 'http-500', behaviour: 'http-500', seconds: settings.phaseSeconds.http500 },
      { label: 'garbage', behaviour: 'garbage', seconds: settings.phaseSeconds.garbage },
      { label: '10-MB', behaviour: 'huge', seconds: settings.phaseSeconds.huge },
      { label: 'broken-key', behaviour: 'keys', seconds: settings.phaseSeconds.brokenKey },
    ];
    for (const phase of phases) {
      progress(`  S1: JWKS ${phase.label} for ${phase.seconds} s`);
      if (phase.label === 'broken-key') jwks.publish([good.publicJwk, brokenRsa, brokenEc]);
      jwks.behave(phase.behaviour);
      jwks.label(phase.label);
      traffic.phase(phase.label);
      await delay(phase.seconds * 1000);
    }
    const outcomes = await traffic.stop();
    jwks.behave('keys');

    const valid = outcomes.filter((outcome) => outcome.kind === 'valid');
    const invalid = outcomes.filter((outcome) => outcome.kind !== 'valid');
    const failed = valid.filter((outcome) => outcome.status !== 200);
    const allowed = invalid.filter((outcome) => outcome.status >= 200 && outcome.status < 300);
    const not401 = invalid.filter((outcome) => outcome.status !== 401);
    const brokenKid = invalid.filter(
      (outcome) => outcome.phase === 'broken-key' && outcome.kind.startsWith('broken-'),
    );
    const brokenNot401 = brokenKid.filter((outcome) => outcome.status !== 401);
    const latencies = valid.map((outcome) => outcome.ms);
    const fetches = jwks.requestsByLabel();
    const failedByPhase = countBy(failed.map((outcome) => outcome.phase));
    const not401ByKind = countBy(not401.map((outcome) => `${outcome.kind} ${outcome.status}`));

    const fetchLine = ['start', 'warm', ...phases.map((phase) => phase.label)]
      .map((label) => `${label} ${fetches.get(label) ?? 0}`)
      .join(', ');
    const line =
      `valid ${fmt(valid.length)} sent / ${fmt(failed.length)} failed` +
      (failed.length > 0 ? ` (${describeCounts(failedByPhase)}; ${statusCounts(failed)})` : '') +
      `; invalid ${fmt(invalid.length)} sent / ${fmt(allowed.length)} wrongly allowed` +
      ` (${fmt(not401.length)} not 401${not401.length > 0 ? `: ${describeCounts(not401ByKind)}` : ''})` +
      `; broken-key kids in broken-key phase ${fmt(brokenKid.length)} / ${fmt(brokenNot401.length)} not 401` +
      `; valid latency p99 ${ms(percentile(latencies, 99))}, max ${ms(Math.max(...latencies))}` +
      `; JWKS fetches ${fetchLine}`;

    // At most one unknown-kid refetch per cooldown and one background refresh (or its retry) per cooldown:
    // a fault must never make authz hammer the issuer.
    const fetchChecks = phases.map((phase) =>
      atMost(
        `JWKS fetches during ${phase.label} (${phase.seconds} s)`,
        fetches.get(phase.label) ?? 0,
        2 * Math.ceil(phase.seconds / settings.refreshCooldownSeconds) + 2,
      ),
    );
    return {
      number: 1,
      title: SCENARIO.title,
      line,
      checks: [
        exactly('valid requests failed while keys are within jwks_max_stale', failed.length, 0),
        exactly('invalid requests allowed', allowed.length, 0),
        exactly('tokens naming a broken key answered other than 401', brokenNot401.length, 0),
        ...fetchChecks,
      ],
      requests: outcomes.length,
      failures: failed.length + allowed.length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await stack.stop();
  }
}

export const SCENARIO: Scenario = {
  number: 1,
  title: 'JWKS endpoint faults while keys are cached',
  requirement:
    'serves every valid token and allows no invalid one while the JWKS endpoint hangs, answers 500, ' +
    'garbage, 10 MB and a broken key, and fetches within limits',
  run,
};
