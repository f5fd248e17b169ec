import { setTimeout as delay } from 'node:timers/promises';
import { stringify } from 'yaml';
import { policyVersion } from '../../src/policy/policy-version.js';
import { generateTestKey } from '../../test/kit/tokens.js';
import { signToken } from '../fault-tokens.js';
import { countBy, describeCounts, exactly, fmt, statusCounts } from '../figures.js';
import { balanceRead, defineScenario, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
import { startTraffic, type Outcome } from '../traffic.js';

type Policy = Record<string, unknown>;

/**
 * B's answer to a `view:balance` token on `GET /balance`: the error under the scheme the token came with,
 * `Bearer` (the route accepts DPoP too, whose bare challenge is a line of its own).
 */
function isInsufficientStatementsScope(challenge: string): boolean {
  return /^Bearer realm="[^"]+", error="insufficient_scope", scope="view:statements"$/.test(challenge);
}

/** The policy with its `GET /balance` route replaced. */
function withBalanceRoute(policy: Policy, route: Record<string, unknown>): Policy {
  const routes = policy['routes'] as Record<string, unknown>[];
  return { ...policy, routes: routes.map((entry) => (entry['path'] === '/balance' ? route : entry)) };
}

/**
 * The versions written. The two valid ones answer a `view:balance` token on `GET /balance` differently
 * (A: 200; B needs `view:statements`: 403 with `scope="view:statements"`), so each answer names the version
 * that decided it. The invalid ones make `GET /balance` public, so a request without a token would be
 * answered 200 if one of them were ever used; each fails in its own way: a value out of bounds, a file
 * cut off mid-write (YAML syntax), an unknown key.
 */
function versions(base: Policy): { valid: [string, string]; invalid: string[] } {
  const a = base;
  const b = withBalanceRoute(base, { methods: ['GET'], path: '/balance', scopes: ['view:statements'] });
  const open = withBalanceRoute(base, { methods: ['GET'], path: '/balance', public: true });
  const issuers = open['issuers'] as Record<string, unknown>[];
  return {
    valid: [stringify(a), stringify(b)],
    invalid: [
      stringify({ ...open, issuers: [{ ...issuers[0], jwks_cache_ttl: '1s' }] }),
      `${stringify(open)}  - { methods: [GET], path: /balance\n`,
      stringify(
        withBalanceRoute(base, { methods: ['GET'], path: '/balance', public: true, public_access: true }),
      ),
    ],
  };
}

/**
 * Scenario 4. The policy file flips between a valid and an invalid version `flips` times under load: A,
 * invalid, B, invalid, A, ... Each version is put in place by rename; two flips in three are followed by
 * SIGHUP, the third is left to the file watch. The next flip comes once authz has logged its judgement of
 * this one (`policy_reload` ok with the new version, or error) and `holdMs` more have passed.
 *
 * Required: no request is decided by an invalid version (by the answers, and by the `policy_version` of
 * every decision log line), and none fails (each is answered as A or B answers it).
 */
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.policyFlips;
  const key = await generateTestKey('faults-flips');
  const impostor = await generateTestKey(key.kid); // published nowhere: its tokens have a bad signature
  let texts: { valid: [string, string]; invalid: string[] } | undefined;
  const issuer = { cacheTtlSeconds: 60, refreshCooldownSeconds: 5 };
  const amendPolicy = (base: Policy) => {
    texts = versions(base);
    return base;
  };
  return withFaultStack({ target, key, issuer, amendPolicy }, async (stack) => {
    const { valid, invalid } = texts!;
    const validVersions = valid.map(policyVersion);
    // The stack wrote A as stringify(base), which is valid[0]: A is in force from the start.

    const decisionsByVersion = new Map<string, number>();
    const reloads = { ok: 0, error: 0 };
    const stopCounting = stack.authz().onLogLine((entry) => {
      if (entry['event'] === 'decision') {
        const version = String(entry['policy_version']);
        decisionsByVersion.set(version, (decisionsByVersion.get(version) ?? 0) + 1);
      } else if (entry['event'] === 'policy_reload') {
        if (entry['result'] === 'ok') reloads.ok += 1;
        else if (entry['result'] === 'error') reloads.error += 1;
      }
    });

    const traffic = startTraffic({
      baseUrl: stack.baseUrl,
      rate: profile.rate,
      next: async (n) => {
        const kind = n % 4 < 2 ? 'view-token' : n % 4 === 2 ? 'no-token' : 'bad-signature';
        const token =
          kind === 'view-token'
            ? await signToken(key)
            : kind === 'bad-signature'
              ? await signToken(impostor)
              : undefined;
        return balanceRead(kind, token);
      },
    });

    let applied = 0;
    let refused = 0;
    for (let flip = 1; flip <= settings.flips; flip++) {
      const authz = stack.authz();
      const toValid = flip % 2 === 0;
      const text = toValid ? valid[(flip / 2) % 2]! : invalid[((flip - 1) / 2) % invalid.length]!;
      const judged = toValid
        ? authz.nextLogLine(
            (entry) =>
              entry['event'] === 'policy_reload' &&
              entry['result'] === 'ok' &&
              entry['policy_version'] === policyVersion(text),
            `the reload of valid version ${policyVersion(text)} (flip ${flip})`,
            5_000,
          )
        : authz.nextLogLine(
            (entry) => entry['event'] === 'policy_reload' && entry['result'] === 'error',
            `the refusal of an invalid version (flip ${flip})`,
            5_000,
          );
      await stack.writePolicy(text);
      if (flip % 3 !== 0) authz.signal('SIGHUP');
      await judged;
      if (toValid) applied += 1;
      else refused += 1;
      if (flip % 20 === 0) progress(`  S4: ${flip} of ${settings.flips} flips`);
      await delay(settings.holdMs);
    }
    const outcomes = await traffic.stop();
    stopCounting();

    let underA = 0;
    let underB = 0;
    const failed: Outcome[] = [];
    const byInvalid: Outcome[] = [];
    for (const outcome of outcomes) {
      if (outcome.kind === 'view-token') {
        if (outcome.status === 200) underA += 1;
        else if (outcome.status === 403 && outcome.challenges.some(isInsufficientStatementsScope))
          underB += 1;
        else failed.push(outcome);
      } else if (outcome.kind === 'no-token') {
        if (outcome.status === 200) byInvalid.push(outcome);
        else if (outcome.status !== 401) failed.push(outcome);
      } else if (outcome.status !== 401) {
        failed.push(outcome);
      }
    }
    const otherVersions = [...decisionsByVersion].filter(([version]) => !validVersions.includes(version));
    const linesByOther = otherVersions.reduce((sum, [, count]) => sum + count, 0);
    const decisionLines = [...decisionsByVersion.values()].reduce((sum, count) => sum + count, 0);

    const line =
      `${settings.flips} flips (${applied} valid applied, ${refused} invalid refused; reload log lines ok ` +
      `${reloads.ok}, error ${reloads.error}); ${fmt(outcomes.length)} requests / ${fmt(failed.length)} failed` +
      (failed.length > 0
        ? ` (${describeCounts(countBy(failed.map((o) => o.kind)))}: ${statusCounts(failed)})`
        : '') +
      `; view:balance token answered as A ${fmt(underA)}, as B ${fmt(underB)}` +
      `; decided by an invalid version: ${fmt(byInvalid.length)} by the answers, ${fmt(linesByOther)} of ` +
      `${fmt(decisionLines)} decision log lines`;
    return {
      line,
      checks: [
        exactly('requests answered by an invalid version (no token, 200)', byInvalid.length, 0),
        exactly('decision log lines under a version other than A or B', linesByOther, 0),
        exactly('requests failed (answered as neither A nor B)', failed.length, 0),
        exactly('valid versions applied', applied, Math.floor(settings.flips / 2)),
      ],
      requests: outcomes.length,
      failures: failed.length + byInvalid.length,
    };
  });
}

export const SCENARIO = defineScenario({
  number: 4,
  title: 'Policy flips between valid and invalid under load',
  requirement:
    'decides no request by an invalid policy version and fails none while the policy file flips between valid and invalid versions',
  measure,
});
