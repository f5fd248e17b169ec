import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { generateDpopKey } from '../../test/kit/dpop-proofs.js';
import { planCpus } from '../../test/kit/process.js';
import { startRedisServer } from '../../test/kit/redis-server.js';
import { generateTestKey } from '../../test/kit/tokens.js';
import { waitForAllow } from '../fault-stack.js';
import { boundTo, signToken } from '../fault-tokens.js';
import { atMost, exactly, fmt, ms, percentile, statusCounts } from '../figures.js';
import { defineScenario, dpopRequest, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
import { startTraffic, type Outcome, type Traffic, type TrafficRequest } from '../traffic.js';

/** `dpop.replay_store.timeout` of the scenario's policy (the default). */
const STORE_TIMEOUT_MS = 200;
/** What a Check may take beyond the store's timeout while Redis is paused: Envoy, authz and a busy machine. */
const LATENCY_MARGIN_MS = 300;
/**
 * How soon after Redis answers again the first proof must be accepted: authz reconnects with a backoff of
 * at most 2 s plus jitter (src/authn/redis-replay-store.ts), and its connection may open within that.
 */
const RECOVERY_BOUND_SECONDS = 3;
/** Every this many requests, one replays a proof accepted earlier instead of sending a fresh one. */
const REPLAY_EVERY = 10;
/** Replays, right after the restart, of proofs the killed Redis had accepted (what a restart forgets). */
const REPLAYS_ACROSS_RESTART = 10;
/** The customer, and the path of the route that requires DPoP (the bank answers its owner 200). */
const SUBJECT = 'faults-carol';
const PATH = `/accounts/${SUBJECT}/balance`;

/** A request's answer time, ms since the epoch. */
const answeredAt = (outcome: Outcome) => outcome.sentAt + outcome.ms;

/**
 * Scenario 8. The DPoP replay store on a real redis-server (`dpop.replay_store: {type: redis, fallback:
 * none}`), with a customer's DPoP requests through Envoy to a route that requires DPoP, each with a fresh
 * proof, and every tenth request a replay of a proof accepted earlier (since Redis last started). Redis is
 * killed (`kill -9`) and started again a few seconds later (an empty data set: nothing is persisted), then
 * paused (SIGSTOP) for a few seconds and resumed. Required: no proof accepted while Redis could not have
 * recorded it (sent after the kill or pause began, answered before Redis was started again or resumed), no
 * replay accepted, the first proof accepted within 3 s of Redis answering again, no answer slower than the
 * store's timeout plus a margin while Redis is paused, none answered 503 in the last second, and no replay,
 * just after the restart, of a proof the killed Redis had accepted (a Redis without persistence forgets
 * them, but its new history refuses proofs issued before it began). In the full profile, then: `fallback: local` by a policy reload, and Redis
 * killed again: every fresh proof must be accepted (by this process's own store) and no replay of what
 * that store accepted; reported: replays, once authz is back on Redis, of what the local store accepted.
 */
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.replayStore;
  const key = await generateTestKey('faults-replay-store');
  const proofKey = await generateDpopKey();
  const issuer = { cacheTtlSeconds: 300, refreshCooldownSeconds: 30 };
  const cpu = planCpus()?.server;
  // On the server core with Envoy, authz and the bank, as a sidecar's Redis would share a node.
  const redis = await startRedisServer(cpu === undefined ? {} : { cpu });
  try {
    const amendPolicy = (policy: Record<string, unknown>) => ({
      ...policy,
      dpop: {
        ...(policy['dpop'] as object | undefined),
        replay_store: {
          type: 'redis',
          url: redis.url,
          key_prefix: 'authz:faults:dpop:',
          timeout: `${STORE_TIMEOUT_MS}ms`,
          fallback: 'none',
        },
        // One customer: its key and subject may use the whole store (no 429 for its own share).
        replay_cache_per_key: 100_000,
        replay_cache_per_subject: 100_000,
      },
      routes: (policy['routes'] as Record<string, unknown>[]).map((route) =>
        route['path'] === '/accounts/{id}/balance'
          ? { ...route, sender_constraint: { dpop: 'required' } }
          : route,
      ),
    });
    return await withFaultStack({ target, key, issuer, amendPolicy }, async (stack) => {
      const token = await signToken(key, { claims: { sub: SUBJECT, ...boundTo(proofKey) } });
      const fresh = (kind: string, tag: string) =>
        dpopRequest(stack.baseUrl, proofKey, token, { kind, tag, method: 'GET', path: PATH });
      await waitForAllow(stack, () => fresh('probe', 'probe'));

      /** Every fresh request's headers, by tag, to replay them. */
      const sentHeaders = new Map<string, Readonly<Record<string, string>>>();
      /** Fresh proofs accepted, in the order answered, with the Redis life (0, 1 after restart) they were in. */
      const accepted: { tag: string; life: number }[] = [];
      let life = 0;
      let lifeStartedAt = Date.now();
      let scanned = 0;
      let acrossRestart = 0; // replays of the last life's proofs still to send after the restart
      let acrossKind = 'replay-across-restart';
      const replayOf = (from: number, kind: string): TrafficRequest | undefined => {
        // `traffic` is set before the first request is built (its timer's first tick).
        const outcomes = traffic.outcomes;
        for (; scanned < outcomes.length; scanned++) {
          const outcome = outcomes[scanned]!;
          if (outcome.kind === 'fresh' && outcome.status === 200 && outcome.sentAt >= lifeStartedAt)
            accepted.push({ tag: outcome.tag!, life });
        }
        const candidates = accepted.filter((entry) => entry.life === from);
        const entry = candidates[Math.floor(Math.random() * candidates.length)];
        if (entry === undefined) return undefined;
        // A proof of the last life is replayed once only: a second time would be a replay of the first.
        if (from !== life) accepted.splice(accepted.indexOf(entry), 1);
        return { kind, tag: entry.tag, method: 'GET', path: PATH, headers: sentHeaders.get(entry.tag)! };
      };
      const traffic: Traffic = startTraffic({
        baseUrl: stack.baseUrl,
        rate: profile.rate,
        phase: 'steady',
        next: async (n) => {
          if (acrossRestart > 0) {
            const replay = replayOf(life - 1, acrossKind);
            if (replay !== undefined) {
              acrossRestart--;
              return replay;
            }
          }
          if (n % REPLAY_EVERY === REPLAY_EVERY - 1) {
            const replay = replayOf(life, 'replay');
            if (replay !== undefined) return replay;
          }
          const tag = `proof-${n}`;
          const request = await fresh('fresh', tag);
          sentHeaders.set(tag, request.headers!);
          return request;
        },
      });

      await delay(settings.steadySeconds * 1000);
      progress(`  S8: kill -9 redis-server (pid ${redis.pid})`);
      traffic.phase('killed');
      const killedAt = Date.now();
      await redis.kill();
      await delay(settings.downSeconds * 1000);
      const restartAt = Date.now();
      await redis.restart();
      const upAt = Date.now();
      life = 1;
      lifeStartedAt = restartAt;
      traffic.phase('restarted');
      progress(`  S8: redis-server restarted (pid ${redis.pid}), empty`);

      await delay(settings.steadySeconds * 1000);
      // authz is connected again by now: replays of what the killed Redis had accepted reach the new one.
      acrossRestart = REPLAYS_ACROSS_RESTART;
      for (let waited = 0; acrossRestart > 0 && waited < 2000; waited += 50) await delay(50);
      await delay(500); // their answers
      progress(`  S8: SIGSTOP redis-server`);
      traffic.phase('paused');
      const pausedAt = Date.now();
      redis.pause();
      await delay(settings.pausedSeconds * 1000);
      const resumedAt = Date.now();
      redis.resume();
      traffic.phase('resumed');
      progress(`  S8: SIGCONT redis-server`);
      await delay(settings.tailSeconds * 1000);

      // (c), full profile: `fallback: local` by a reload, then Redis killed again. Replays while it is
      // down pick proofs accepted since the kill, which this process's own store holds.
      let local: { killedAt: number; restartAt: number } | undefined;
      if (settings.fallbackDownSeconds !== undefined) {
        const document = parse(await readFile(stack.policyFile, 'utf8')) as {
          dpop: { replay_store: Record<string, unknown> };
        };
        document.dpop.replay_store['fallback'] = 'local';
        const authz = stack.authz();
        const reloaded = authz.nextLogLine(
          (entry) => entry['event'] === 'policy_reload' && entry['result'] === 'ok',
          'the reload to fallback: local',
          5_000,
        );
        await stack.writePolicy(stringify(document));
        authz.signal('SIGHUP');
        await reloaded;
        progress('  S8: policy reloaded with fallback: local');
        traffic.phase('fallback-local');
        await delay(settings.steadySeconds * 1000); // the new policy's store connects
        progress(`  S8: kill -9 redis-server (pid ${redis.pid}), fallback: local`);
        const killedAgainAt = Date.now();
        await redis.kill();
        life = 2;
        lifeStartedAt = Date.now(); // Redis is gone: what is accepted from now on, the local store holds
        traffic.phase('killed-local');
        await delay(settings.fallbackDownSeconds * 1000);
        const restartedAgainAt = Date.now();
        // Until authz is back on Redis it accepts proofs locally, which Redis will never know: the next
        // life starts when authz says the store is available again.
        const back = authz.nextLogLine(
          (entry) => entry['event'] === 'replay_store' && entry['state'] === 'available',
          'the replay store available again after the restart',
          15_000,
        );
        life = 3;
        lifeStartedAt = Number.POSITIVE_INFINITY;
        await redis.restart();
        traffic.phase('restarted-local');
        progress(`  S8: redis-server restarted (pid ${redis.pid}), empty`);
        await back;
        lifeStartedAt = Date.now();
        local = { killedAt: killedAgainAt, restartAt: restartedAgainAt };
        // Proofs the local store accepted during the outage, replayed now that Redis is in use again.
        acrossKind = 'replay-after-fallback';
        acrossRestart = REPLAYS_ACROSS_RESTART;
        await delay(settings.tailSeconds * 1000);
      }
      const stoppedAt = Date.now();
      const outcomes = await traffic.stop();

      const of = (kind: string) => outcomes.filter((outcome) => outcome.kind === kind);
      const freshOnes = of('fresh');
      const replays = of('replay');
      const acrossRestartOnes = of('replay-across-restart');
      // Redis could not have recorded a proof sent after the fault began and answered before it was back.
      const duringFault = (outcome: Outcome, from: number, until: number) =>
        outcome.sentAt >= from && answeredAt(outcome) < until;
      const acceptedWhileDown = freshOnes.filter(
        (outcome) =>
          outcome.status === 200 &&
          (duringFault(outcome, killedAt, restartAt) || duringFault(outcome, pausedAt, resumedAt)),
      );
      const replaysAccepted = replays.filter((outcome) => outcome.status === 200);
      const unexpected = [
        ...freshOnes.filter((outcome) => outcome.status !== 200 && outcome.status !== 503),
        ...replays.filter((outcome) => outcome.status !== 401 && outcome.status !== 503),
      ];
      const firstAcceptedAfter = (from: number, since: number) => {
        const times = freshOnes
          .filter((outcome) => outcome.status === 200 && outcome.sentAt >= from)
          .map(answeredAt);
        return times.length === 0 ? Number.POSITIVE_INFINITY : (Math.min(...times) - since) / 1000;
      };
      const recoveredAfterRestart = firstAcceptedAfter(restartAt, upAt);
      const recoveredAfterResume = firstAcceptedAfter(resumedAt, resumedAt);
      const sentIn = (from: number, until: number) =>
        outcomes.filter((outcome) => outcome.sentAt >= from && outcome.sentAt < until);
      const whilePaused = sentIn(pausedAt, resumedAt);
      const whileKilled = sentIn(killedAt, restartAt);
      const slowestPaused = Math.max(0, ...whilePaused.map((outcome) => outcome.ms));
      const slowestKilled = Math.max(0, ...whileKilled.map((outcome) => outcome.ms));
      const steady = sentIn(0, killedAt);
      const lastSecond = outcomes.filter(
        (outcome) => outcome.status === 503 && outcome.sentAt >= stoppedAt - 1000,
      );
      const acceptedAcross = acrossRestartOnes.filter((outcome) => outcome.status === 200);
      const wronglyAccepted = acceptedWhileDown.length + replaysAccepted.length + acceptedAcross.length;
      const whileLocal = local === undefined ? [] : sentIn(local.killedAt, local.restartAt);
      const freshRefusedLocal = whileLocal.filter(
        (outcome) => outcome.kind === 'fresh' && outcome.status !== 200,
      );
      const replaysLocal = whileLocal.filter((outcome) => outcome.kind === 'replay');
      const afterFallback = of('replay-after-fallback');

      const line =
        `${fmt(outcomes.length)} DPoP requests (${fmt(freshOnes.length)} fresh proofs, ${fmt(replays.length)} ` +
        `replays): before the kill ${statusCounts(steady)}; Redis killed ${settings.downSeconds} s: ` +
        `${statusCounts(whileKilled)}, slowest ${ms(slowestKilled)}; first proof accepted ` +
        `${recoveredAfterRestart.toFixed(2)} s after Redis answered again; Redis paused ` +
        `${settings.pausedSeconds} s: ${statusCounts(whilePaused)}, slowest ${ms(slowestPaused)} ` +
        `(p99 ${ms(
          percentile(
            whilePaused.map((outcome) => outcome.ms),
            99,
          ),
        )}, store timeout ${STORE_TIMEOUT_MS} ms); first proof accepted ` +
        `${recoveredAfterResume.toFixed(2)} s after the resume; ${fmt(wronglyAccepted)} wrongly accepted ` +
        `(${fmt(acceptedWhileDown.length)} while Redis was down or paused, ${fmt(replaysAccepted.length)} ` +
        `replays, ${fmt(acceptedAcross.length)} replays right after the restart of the ` +
        `${fmt(acrossRestartOnes.length)} proofs the killed Redis had accepted: ` +
        `${statusCounts(acrossRestartOnes)})` +
        (local === undefined
          ? ''
          : `; fallback: local, Redis killed ${settings.fallbackDownSeconds} s: ${statusCounts(whileLocal)} ` +
            `(${fmt(replaysLocal.length)} replays of proofs the local store accepted, ` +
            `${fmt(replaysLocal.filter((outcome) => outcome.status === 200).length)} accepted); ` +
            `once authz was back on Redis, replays of proofs the local store had accepted: ` +
            `${fmt(afterFallback.filter((outcome) => outcome.status === 200).length)} of ` +
            `${fmt(afterFallback.length)} accepted`);
      return {
        line,
        checks: [
          exactly(
            'proofs accepted while Redis was down or paused (fallback: none)',
            acceptedWhileDown.length,
            0,
          ),
          exactly('replays accepted', replaysAccepted.length, 0),
          exactly(
            'replays accepted after the restart, of proofs the killed Redis had accepted',
            acceptedAcross.length,
            0,
          ),
          exactly('answers other than 200 or 503 (fresh), 401 or 503 (replays)', unexpected.length, 0),
          atMost(
            'seconds from Redis answering after its restart to the first proof accepted',
            recoveredAfterRestart,
            RECOVERY_BOUND_SECONDS,
          ),
          atMost(
            'seconds from the resume to the first proof accepted',
            recoveredAfterResume,
            RECOVERY_BOUND_SECONDS,
          ),
          atMost(
            'slowest answer while Redis was paused, ms (store timeout plus margin)',
            Math.round(slowestPaused),
            STORE_TIMEOUT_MS + LATENCY_MARGIN_MS,
          ),
          exactly('503s in the last second (service back after the resume)', lastSecond.length, 0),
          ...(local === undefined
            ? []
            : [
                exactly(
                  'fresh proofs not accepted while Redis was down with fallback: local',
                  freshRefusedLocal.length,
                  0,
                ),
              ]),
        ],
        requests: outcomes.length,
        failures: wronglyAccepted + unexpected.length,
      };
    });
  } finally {
    await redis.stop();
  }
}

export const SCENARIO = defineScenario({
  number: 8,
  title: 'DPoP replay store on Redis: kill -9 and restart, pause and resume',
  requirement:
    'accepts no proof while Redis is down or paused (fallback: none) and no replay, answers within the ' +
    "store's timeout while Redis is paused, and accepts proofs again within 3 s of Redis answering",
  measure,
});
