import { connect, type ClientHttp2Session } from 'node:http2';
import { setTimeout as delay } from 'node:timers/promises';
import { generateTestKey, signMany } from '../../test/kit/tokens.js';
import { signToken } from '../fault-tokens.js';
import { atMost, exactly, fmt, latencySummary, statusCounts } from '../figures.js';
import { balanceRead, defineScenario, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
import { startTraffic } from '../traffic.js';

const CONNECT_BATCH = 100; // connections opened at once
const CONNECT_TIMEOUT_MS = 10_000;

/** An HTTP/2 connection to `port` that has exchanged SETTINGS with the server, or why it has not. */
function openIdleConnection(port: number): Promise<ClientHttp2Session | Error> {
  return new Promise((resolve) => {
    const session = connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      resolve(new Error(`no SETTINGS within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    session.once('connect', () => {
      clearTimeout(timer);
      resolve(session);
    });
    session.once('error', (error) => {
      clearTimeout(timer);
      resolve(error);
    });
  });
}

/**
 * Scenario 6. `connections` HTTP/2 connections opened straight to authz's gRPC port and kept open without a
 * call, while a flood goes through Envoy: `unknownKidRate` requests a second naming `distinctKids` distinct
 * unknown `kid`s, plus valid requests. Required: every valid request is served, no unknown-`kid` token is
 * allowed, and authz asks the JWKS endpoint no more than documented: one unknown-`kid` refetch per
 * `jwks_refresh_cooldown` and a background refresh at 75–90 % of each `jwks_cache_ttl`.
 */
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.idleConnections;
  const key = await generateTestKey('faults-flood');
  const stranger = await generateTestKey('faults-flood-stranger'); // published nowhere
  return withFaultStack({ target, key, issuer: settings }, async (stack) => {
    const sessions: ClientHttp2Session[] = [];
    try {
      const authz = stack.authz();
      const fdsBefore = authz.openFds();

      const errors: Error[] = [];
      for (let opened = 0; opened < settings.connections; opened += CONNECT_BATCH) {
        const batch = Math.min(CONNECT_BATCH, settings.connections - opened);
        const results = await Promise.all(
          Array.from({ length: batch }, () => openIdleConnection(stack.authzPort)),
        );
        for (const result of results) {
          if (result instanceof Error) errors.push(result);
          else sessions.push(result);
        }
      }
      progress(`  S6: ${sessions.length} idle HTTP/2 connections open to authz (${errors.length} failed)`);

      // Tokens for the unknown kids, signed ahead: a refused token is never cached, so repeats cost authz as much.
      const unknownKidTokens = await signMany(settings.distinctKids, (i) =>
        signToken(stranger, { header: { kid: `faults-flood-unknown-${i}` } }),
      );
      const validRate = profile.rate / 2;
      const validEvery = Math.max(2, Math.round((validRate + settings.unknownKidRate) / validRate));
      const fetchesBefore = stack.jwks.requests;
      const floodStarted = Date.now();
      let unknownSent = 0;
      const traffic = startTraffic({
        baseUrl: stack.baseUrl,
        rate: validRate + settings.unknownKidRate,
        next: async (n) => {
          if (n % validEvery === 0) return balanceRead('valid', await signToken(key));
          return balanceRead('unknown-kid', unknownKidTokens[unknownSent++ % unknownKidTokens.length]!);
        },
      });
      await delay(settings.floodSeconds * 1000);
      const outcomes = await traffic.stop();
      const floodSeconds = (Date.now() - floodStarted) / 1000;
      const fetches = stack.jwks.requests - fetchesBefore;
      const stillOpen = sessions.filter((session) => !session.closed && !session.destroyed).length;
      const fdsWithConnections = authz.openFds();

      const valid = outcomes.filter((outcome) => outcome.kind === 'valid');
      const validFailed = valid.filter((outcome) => outcome.status !== 200);
      const unknown = outcomes.filter((outcome) => outcome.kind === 'unknown-kid');
      const unknownAllowed = unknown.filter((outcome) => outcome.status >= 200 && outcome.status < 300);
      const unknownNot401 = unknown.filter((outcome) => outcome.status !== 401);
      const unknownKidRefetches = Math.ceil(floodSeconds / settings.refreshCooldownSeconds);
      const backgroundRefreshes = Math.ceil(floodSeconds / (0.75 * settings.cacheTtlSeconds));
      const fetchLimit = unknownKidRefetches + backgroundRefreshes + 1;
      const latencies = valid.map((outcome) => outcome.ms);

      const line =
        `idle HTTP/2 connections ${fmt(sessions.length)} of ${fmt(settings.connections)} open` +
        (errors.length > 0 ? ` (${errors.length} failed: ${errors[0]!.message})` : '') +
        `, ${fmt(stillOpen)} still open at the end; authz fds ${fdsBefore} before them, ${fdsWithConnections} at the end` +
        `; valid ${fmt(valid.length)} sent / ${fmt(validFailed.length)} failed` +
        (validFailed.length > 0 ? ` (${statusCounts(validFailed)})` : '') +
        `; unknown kids (${fmt(settings.distinctKids)} distinct) ${fmt(unknown.length)} sent / ` +
        `${fmt(unknownAllowed.length)} allowed (${statusCounts(unknown)})` +
        `; JWKS fetches in ${floodSeconds.toFixed(0)} s: ${fetches} (limit ${fetchLimit})` +
        `; valid latency ${latencySummary(latencies)}`;
      return {
        line,
        checks: [
          exactly('idle connections that could not be opened', errors.length, 0),
          exactly('valid requests failed', validFailed.length, 0),
          exactly('unknown-kid tokens allowed', unknownAllowed.length, 0),
          exactly('unknown-kid tokens answered other than 401', unknownNot401.length, 0),
          atMost(
            `JWKS fetches during the flood (${unknownKidRefetches} per cooldown + ${backgroundRefreshes} background + 1)`,
            fetches,
            fetchLimit,
          ),
        ],
        requests: outcomes.length,
        failures: validFailed.length + unknownAllowed.length,
      };
    } finally {
      for (const session of sessions) session.destroy();
    }
  });
}

export const SCENARIO = defineScenario({
  number: 6,
  title: '1,000 idle gRPC connections and an unknown-kid flood',
  requirement:
    'keeps serving valid tokens with 1,000 idle HTTP/2 connections open and a flood of unknown kids, ' +
    'and fetches the key set within the documented limits',
  measure,
});
