import { setTimeout as delay } from 'node:timers/promises';
import { generateTestKey, type TestKey } from '../../test/kit/tokens.js';
import { RETIREMENT_SLACK_SECONDS } from '../fault-profile.js';
import { signToken } from '../fault-tokens.js';
import { atLeast, atMost, exactly, fmt, statusCounts } from '../figures.js';
import { balanceRead, defineScenario, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
import { startTraffic } from '../traffic.js';

/**
 * Scenario 2. Key rotation with retirement under load, as an identity provider does it: publish the new
 * key next to the old one, sign with the new key, then remove the old key. Half the requests carry a token
 * from the current signer, a quarter a token signed with the old key throughout (tokens issued before the
 * rotation, still in clients' hands), a quarter a bad signature under the old key's `kid`.
 *
 * Required: no token of the current signer is refused at any point (the new key is used only once
 * published); the old key's tokens are accepted until it is removed, for at most `jwks_cache_ttl` plus
 * {@link RETIREMENT_SLACK_SECONDS} after, and refused (401) from the first refusal on.
 */
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.rotation;
  const oldKey = await generateTestKey('faults-rotation-old');
  const newKey = await generateTestKey('faults-rotation-new');
  const impostor = await generateTestKey(oldKey.kid); // published nowhere: its tokens have a bad signature
  return withFaultStack({ target, key: oldKey, issuer: settings }, async (stack) => {
    let signer: TestKey = oldKey;
    const traffic = startTraffic({
      baseUrl: stack.baseUrl,
      rate: profile.rate,
      phase: 'old key only',
      next: async (n) => {
        const kind = n % 4 < 2 ? 'current' : n % 4 === 2 ? 'old-key' : 'bad-signature';
        const key = kind === 'current' ? signer : kind === 'old-key' ? oldKey : impostor;
        const tag = kind === 'current' ? (signer === newKey ? 'new' : 'old') : undefined;
        return balanceRead(kind, await signToken(key), tag);
      },
    });

    await delay(settings.steadySeconds * 1000);
    progress('  S2: new key published next to the old one');
    stack.jwks.publish([oldKey.publicJwk, newKey.publicJwk]);
    traffic.phase('both published');
    await delay(settings.publishedSeconds * 1000);
    progress('  S2: tokens signed with the new key');
    signer = newKey;
    traffic.phase('signing with new');
    await delay(settings.switchedSeconds * 1000);
    progress('  S2: old key removed');
    stack.jwks.publish([newKey.publicJwk]);
    const removedAt = Date.now();
    traffic.phase('old key removed');
    const boundSeconds = settings.cacheTtlSeconds + RETIREMENT_SLACK_SECONDS;
    await delay((boundSeconds + settings.afterBoundSeconds) * 1000);
    const outcomes = await traffic.stop();

    const current = outcomes.filter((outcome) => outcome.kind === 'current');
    const currentRefused = current.filter((outcome) => outcome.status !== 200);
    const newKeyTokens = current.filter((outcome) => outcome.tag === 'new');
    const newKeyRefused = newKeyTokens.filter((outcome) => outcome.status !== 200);
    const old = outcomes.filter((outcome) => outcome.kind === 'old-key');
    const oldWhilePublished = old.filter((outcome) => outcome.sentAt < removedAt);
    const oldRefusedWhilePublished = oldWhilePublished.filter((outcome) => outcome.status !== 200);
    const oldAfterRemoval = old.filter((outcome) => outcome.sentAt >= removedAt);
    const lastAccepted = Math.max(
      removedAt,
      ...oldAfterRemoval.filter((outcome) => outcome.status === 200).map((outcome) => outcome.sentAt),
    );
    // The retirement's refusal is a 401; any other answer (a 5xx) is counted below on its own, so that one
    // failed request is not taken for the moment the key was retired.
    const firstRefusal = oldAfterRemoval.find((outcome) => outcome.status === 401);
    const acceptedAfterRefusal =
      firstRefusal === undefined
        ? []
        : oldAfterRemoval.filter((outcome) => outcome.sentAt > firstRefusal.sentAt && outcome.status === 200);
    const refusedAfterRemoval = oldAfterRemoval.filter((outcome) => outcome.status !== 200);
    const refusedNot401 = refusedAfterRemoval.filter((outcome) => outcome.status !== 401);
    const badSignatureAllowed = outcomes.filter(
      (outcome) => outcome.kind === 'bad-signature' && outcome.status >= 200 && outcome.status < 300,
    );
    const acceptedSeconds = (lastAccepted - removedAt) / 1000;

    const line =
      `current signer's tokens ${fmt(current.length)} sent / ${fmt(currentRefused.length)} refused` +
      ` (new key's ${fmt(newKeyTokens.length)} / ${fmt(newKeyRefused.length)})` +
      `; old key's tokens while published ${fmt(oldWhilePublished.length)} / ${fmt(oldRefusedWhilePublished.length)} refused` +
      `; after removal accepted for ${acceptedSeconds.toFixed(1)} s (bound ${boundSeconds} s), then ` +
      `${fmt(refusedAfterRemoval.length)} refused (${statusCounts(refusedAfterRemoval)}), ` +
      `${fmt(acceptedAfterRefusal.length)} accepted after the first refusal` +
      `; bad signatures allowed ${fmt(badSignatureAllowed.length)}; JWKS fetches ${fmt(stack.jwks.requests)}`;
    return {
      line,
      checks: [
        exactly(
          "current signer's tokens refused (new key's after it is published)",
          currentRefused.length,
          0,
        ),
        exactly("old key's tokens refused while it is published", oldRefusedWhilePublished.length, 0),
        atMost("seconds the old key's tokens are accepted after its removal", acceptedSeconds, boundSeconds),
        atLeast("old key's tokens refused after its removal", refusedAfterRemoval.length, 1),
        exactly("old key's tokens accepted after the first refusal", acceptedAfterRefusal.length, 0),
        exactly("old key's tokens refused with other than 401", refusedNot401.length, 0),
        exactly('bad signatures allowed', badSignatureAllowed.length, 0),
      ],
      requests: outcomes.length,
      failures: currentRefused.length + oldRefusedWhilePublished.length + acceptedAfterRefusal.length,
    };
  });
}

export const SCENARIO = defineScenario({
  number: 2,
  title: 'Key rotation with retirement under load',
  requirement:
    "never refuses the new key's tokens once it is published, and refuses the old key's within " +
    'jwks_cache_ttl plus slack of its removal, for good',
  measure,
});
