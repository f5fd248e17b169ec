import { setTimeout as delay } from 'node:timers/promises';
import { ecKeyOffCurve, generateTestKey, rsaKeyWithoutModulus } from '../../test/kit/tokens.js';
import { expiredClaims, signToken } from '../fault-tokens.js';
import {
  atMost,
  countBy,
  describeCounts,
  describeKindsAndStatuses,
  exactly,
  fmt,
  latencySummary,
  statusCounts,
} from '../figures.js';
import type { KeyServerBehaviour } from '../../test/kit/key-server.js';
import { balanceRead, defineScenario, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
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
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.jwksFaults;
  const good = await generateTestKey('faults-good');
  // Keys published nowhere: under the good key's kid (a bad signature), or under kids it does not know.
  const impostor = await generateTestKey(good.kid);
  const stranger = await generateTestKey('faults-stranger');
  const brokenRsa = rsaKeyWithoutModulus('faults-broken-rsa');
  const brokenEc = await ecKeyOffCurve('faults-broken-ec');
  const brokenRsaSigner = await generateTestKey(brokenRsa.kid!);
  const brokenEcSigner = await generateTestKey(brokenEc.kid!, 'ES256');

  const issuer = {
    cacheTtlSeconds: settings.cacheTtlSeconds,
    refreshCooldownSeconds: settings.refreshCooldownSeconds,
    algorithms: ['RS256', 'ES256'],
  };
  return withFaultStack({ target, key: good, issuer }, async (stack) => {
    let warm = true;
    let unknownKids = 0;
    const request = async (kind: string): Promise<TrafficRequest> => balanceRead(kind, await tokenOf(kind));
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

    const fetchLine = ['start', 'warm', ...phases.map((phase) => phase.label)]
      .map((label) => `${label} ${fetches.get(label) ?? 0}`)
      .join(', ');
    const line =
      `valid ${fmt(valid.length)} sent / ${fmt(failed.length)} failed` +
      (failed.length > 0 ? ` (${describeCounts(failedByPhase)}; ${statusCounts(failed)})` : '') +
      `; invalid ${fmt(invalid.length)} sent / ${fmt(allowed.length)} wrongly allowed` +
      ` (${fmt(not401.length)} not 401${not401.length > 0 ? `: ${describeKindsAndStatuses(not401)}` : ''})` +
      `; broken-key kids in broken-key phase ${fmt(brokenKid.length)} / ${fmt(brokenNot401.length)} not 401` +
      `; valid latency ${latencySummary(latencies)}` +
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
      line,
      checks: [
        exactly('valid requests failed while keys are within jwks_max_stale', failed.length, 0),
        exactly('invalid requests allowed', allowed.length, 0),
        exactly('tokens naming a broken key answered other than 401', brokenNot401.length, 0),
        ...fetchChecks,
      ],
      requests: outcomes.length,
      failures: failed.length + allowed.length,
    };
  });
}

export const SCENARIO = defineScenario({
  number: 1,
  title: 'JWKS endpoint faults while keys are cached',
  requirement:
    'serves every valid token and allows no invalid one while the JWKS endpoint hangs, answers 500, ' +
    'garbage, 10 MB and a broken key, and fetches within limits',
  measure,
});
