import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { base64url } from 'jose';
import { accessTokenHash, generateDpopKeys, type DpopKey } from '../../test/kit/dpop-proofs.js';
import { encodeJson, generateTestKey, type TestKey } from '../../test/kit/tokens.js';
import { boundTo, signToken } from '../fault-tokens.js';
import { atLeast, atMost, exactly, fmt, ms, percentile, statusCounts } from '../figures.js';
import { defineScenario, dpopRequest, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
import { startTraffic, type Outcome, type TrafficRequest } from '../traffic.js';

/** One flood of the scenario: what the hostile client sends, and what each of its requests must get. */
interface Flood {
  readonly name: string;
  readonly expected: readonly number[];
  next(sequence: number): Promise<TrafficRequest>;
}

/**
 * A DPoP proof whose `jwk` is a new RSA key each time (a cache of keys must not hide the cost), of a size
 * that makes each signature check costly, and whose signature is garbage: every other one a 16384-bit
 * modulus, the others a 3072-bit modulus with a 3072-bit exponent (a check is a modular exponentiation by
 * the exponent). What the proof key limits refuse before any import (docs/sender-constraints.md).
 */
function hugeKeyProof(accessToken: string, url: string, sequence: number): string {
  const big = sequence % 2 === 0;
  const bytes = big ? 2048 : 384;
  const modulus = randomBytes(bytes);
  modulus[0]! |= 0x80; // the full size
  modulus[bytes - 1]! |= 0x01; // odd, as a modulus is
  const exponent = big ? Uint8Array.of(1, 0, 1) : randomBytes(384);
  exponent[exponent.length - 1]! |= 0x01;
  const jwk = { kty: 'RSA', e: base64url.encode(exponent), n: base64url.encode(modulus) };
  const header = encodeJson({ typ: 'dpop+jwt', alg: 'RS256', jwk });
  const claims = encodeJson({
    jti: randomUUID(),
    htm: 'GET',
    htu: url,
    iat: Math.floor(Date.now() / 1000),
    ath: accessTokenHash(accessToken),
  });
  return `${header}.${claims}.${base64url.encode(randomBytes(bytes))}`;
}

/**
 * Scenario 7. One client floods while another, a customer going about its business, makes valid DPoP
 * requests at a steady rate: first nothing (quiet), then a leaked DPoP-bound token with fresh proofs of
 * another key (each refused: binding mismatch, nothing remembered), then a client's own token and key with
 * fresh valid proofs (its share of the replay store spent, then 429), then proofs whose `jwk` is a huge
 * RSA key (16384-bit modulus, or a 3072-bit exponent) with a garbage signature (refused before any
 * import). Required: every request of the customer is
 * served in every phase; each flood gets exactly its answers; in the full profile, the customer's median
 * latency in each flood within 2x of the quiet one.
 */
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.hostileClients;
  const key: TestKey = await generateTestKey('faults-hostile');
  const [customerKey, victimKey, mallorysKey] = (await generateDpopKeys(3)) as [DpopKey, DpopKey, DpopKey];
  const issuer = { cacheTtlSeconds: 300, refreshCooldownSeconds: 30 };
  const amendPolicy = (policy: Record<string, unknown>) => ({
    ...policy,
    dpop: { replay_cache_per_key: settings.sharePerKey },
  });
  return withFaultStack({ target, key, issuer, amendPolicy }, async (stack) => {
    const url = `${stack.baseUrl}/balance`;
    const customerToken = await signToken(key, { claims: { sub: 'carol', ...boundTo(customerKey) } });
    const leakedToken = await signToken(key, { claims: { sub: 'victor', ...boundTo(victimKey) } });
    const mallorysToken = await signToken(key, { claims: { sub: 'mallory', ...boundTo(mallorysKey) } });
    const dpopBalanceRead = (kind: string, proofKey: DpopKey, token: string) =>
      dpopRequest(stack.baseUrl, proofKey, token, { kind, method: 'GET', path: '/balance' });

    const customer = startTraffic({
      baseUrl: stack.baseUrl,
      rate: settings.customerRate,
      phase: 'quiet',
      next: () => dpopBalanceRead('customer', customerKey, customerToken),
    });
    const floods: readonly Flood[] = [
      {
        name: 'leaked token, proofs of another key',
        expected: [401],
        next: () => dpopBalanceRead('flood', mallorysKey, leakedToken),
      },
      {
        name: 'its own token and key, valid proofs',
        expected: [200, 429],
        next: () => dpopBalanceRead('flood', mallorysKey, mallorysToken),
      },
      {
        name: 'huge RSA proof keys, garbage signatures',
        expected: [401],
        next: (sequence) =>
          Promise.resolve({
            kind: 'flood',
            method: 'GET',
            path: '/balance',
            headers: {
              authorization: `DPoP ${leakedToken}`,
              dpop: hugeKeyProof(leakedToken, url, sequence),
            },
          }),
      },
    ];

    await delay(settings.phaseSeconds * 1000);
    const floodOutcomes: { flood: Flood; outcomes: Outcome[] }[] = [];
    for (const flood of floods) {
      progress(`  S7: ${flood.name}, ${settings.floodRate} requests a second`);
      customer.phase(flood.name);
      const traffic = startTraffic({ baseUrl: stack.baseUrl, rate: settings.floodRate, next: flood.next });
      await delay(settings.phaseSeconds * 1000);
      floodOutcomes.push({ flood, outcomes: await traffic.stop() });
    }
    const outcomes = await customer.stop();

    const byPhase = (phase: string) => outcomes.filter((outcome) => outcome.phase === phase);
    const median = (list: readonly Outcome[]) =>
      percentile(
        list.map((outcome) => outcome.ms),
        50,
      );
    const quiet = byPhase('quiet');
    const quietMedian = median(quiet);
    const customerFailed = outcomes.filter((outcome) => outcome.status !== 200);
    const phases = floodOutcomes.map(({ flood, outcomes: sent }) => {
      const mine = byPhase(flood.name);
      return {
        flood,
        sent,
        unexpected: sent.filter((outcome) => !flood.expected.includes(outcome.status)),
        refusedForShare: sent.filter((outcome) => outcome.status === 429),
        ratio: median(mine) / quietMedian,
        medianMs: median(mine),
      };
    });
    const line =
      `customer ${fmt(outcomes.length)} valid DPoP requests / ${fmt(customerFailed.length)} failed` +
      (customerFailed.length > 0 ? ` (${statusCounts(customerFailed)})` : '') +
      `; its median ${ms(quietMedian)} quiet, ` +
      phases
        .map(
          ({ flood, sent, medianMs, ratio }) =>
            `${ms(medianMs)} (${ratio.toFixed(2)}x) during ${flood.name} (${fmt(sent.length)} sent: ${statusCounts(sent)})`,
        )
        .join(', ');
    const ownKey = phases[1]!;
    return {
      line,
      checks: [
        exactly('customer requests not served', customerFailed.length, 0),
        ...phases.map(({ flood, unexpected }) =>
          exactly(`${flood.name}: answers other than ${flood.expected.join(' or ')}`, unexpected.length, 0),
        ),
        atLeast('own key: requests refused 429 once its share was spent', ownKey.refusedForShare.length, 1),
        // A ratio of latencies is a figure of a quiet machine: checked by `npm run faults`, shown by the short profile.
        ...(profile.name === 'full'
          ? phases.map(({ flood, ratio }) =>
              atMost(`customer's median latency during ${flood.name}, times the quiet one`, ratio, 2),
            )
          : []),
      ],
      requests: outcomes.length + phases.reduce((sum, phase) => sum + phase.sent.length, 0),
      failures: customerFailed.length + phases.reduce((sum, phase) => sum + phase.unexpected.length, 0),
    };
  });
}

export const SCENARIO = defineScenario({
  number: 7,
  title: 'One client floods: leaked tokens, its own share, huge proof keys',
  requirement:
    "serves another client's every DPoP request while one client floods with a leaked token, spends its " +
    'share of the replay store (429), and sends huge RSA proof keys (refused before any import)',
  measure,
});
