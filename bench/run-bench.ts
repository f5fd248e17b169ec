import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { describeRun, findTools, type BenchContext } from './bench-context.js';
import {
  BENCH_AUDIENCE,
  BENCH_ISSUER,
  BENCH_PUBLIC_ORIGIN,
  checkRequest,
  generateDpopClientKey,
  generateIssuerKey,
  signAccessTokens,
  signDpopProofs,
  writeDataFile,
  type DataFile,
} from './bench-tokens.js';
import { measureThroughEnvoy, type HttpResult, type HttpScenario } from './envoy-path.js';
import {
  measureInterleaved,
  measureOnce,
  SATURATED,
  warmUp,
  type GrpcScenario,
  type ScenarioResult,
} from './grpc-scenarios.js';
import {
  ALLOW,
  answers,
  PERMISSION_DENIED_403,
  startAuthzServer,
  startLimitServer,
  UNAUTHENTICATED_401,
  type GrpcServer,
} from './grpc-servers.js';
import { count, markdownTable, met, ms, percent, type ResultRow } from './results-table.js';
import { measureRouteScaling } from './route-scaling.js';
import { pinThisProcess, planCpus, repoRoot } from '../test/kit/process.js';
import { startKeyServer } from '../test/kit/key-server.js';
import { startOtelCollector } from '../test/kit/otel-collector.js';
import { startRedisServer, type RedisServer } from '../test/kit/redis-server.js';

// `npm run bench` (issue 10): the authorization hop measured against the stack it runs on, side by side in
// one run, and printed as one table of ratios (a 2-core machine shared with everything else says little in
// absolute numbers). Load generators run on CPU 0 and the servers under test on CPU 1 (taskset):
// - gRPC Check with ghz (50 calls in flight on one connection): two limit servers built here from our
//   protos (limit-server.ts: "empty" answers OK without looking, "verify" checks the RS256 signature and
//   parses the payload) against `authz serve` with default logging and with --log-allowed-sample 0, each
//   with unique tokens (P1) and one repeated token (P2), and denials (no token, malformed, missing scope);
//   and P8, DPoP (RFC 9449, issue 14): one repeated DPoP-bound token (its verification cached as in P2)
//   with a fresh proof per Check (a signature verified every time: proofs are good once), against P2 on
//   the same server; and P8 again on a third server whose policy puts the replay store on a real
//   redis-server (`dpop.replay_store`, issue 21), pinned to the server core with the servers (2 cores: a
//   core of its own would leave none for the load generator), its CPU time reported beside authz's. All
//   of them in interleaved rounds, medians kept, so that other work on the machine
//   hits them alike.
//   And P1 and P2 again on two more servers with tracing on (OTEL_* variables, issue 22), exporting to a
//   real OpenTelemetry Collector (scripts/otelcol) on the load core: every Check sampled, and 1 %.
//   Then P7, an open loop at half of authz's measured capacity, and P6, RSS after 100,000 distinct tokens,
//   each on a fresh process.
// - P4: HTTP through the real Envoy (envoy/envoy.yaml, ports changed) with h2load --h1 -c 16, Envoy, authz
//   and the bank on the server core.
// - P5, in process: one decision over a policy of 10 routes and one of 10,000.
// Every scenario is asked once before it is timed whether it answers as it should (ghz counts a gRPC OK
// that carries a denial as a success, h2load any status), and what did not is reported under the table.
//
// Environment:
//   BENCH_SECONDS  seconds each scenario is timed, over all rounds (default 10; the bench takes ~5 min).
//                  P8's DPoP proofs are signed before the gRPC rounds and accepted for 10 min (max_age):
//                  above about 20 with 5 rounds the last rounds may outlive them (P8 left out, with a note)
//   BENCH_ROUNDS   interleaved rounds (default 5)
//   BENCH_TARGET   a checkout whose built dist/ is measured (default: this one), e.g. a worktree of an
//                  older commit for a before/after comparison; bench, protos and tools come from here
//   GHZ_BIN, H2LOAD_BIN, ENVOY_BIN  the tools (default: .tools/bin/ghz, h2load on PATH, .tools/bin/envoy)

const SECONDS = positiveInteger('BENCH_SECONDS', 10);
const ROUNDS = positiveInteger('BENCH_ROUNDS', 5);
const SECONDS_PER_RUN = Math.max(1, Math.round(SECONDS / ROUNDS));
const WARM_UP_SECONDS = 2; // untimed load on each fresh server
const HTTP_WARM_UP_SECONDS = 1; // before each h2load run
const H2LOAD_CLIENTS = 16; // HTTP/1.1 connections, one request in flight each
const P6_TOKENS = 100_000;
/** Tokens for the unique-token rounds: none repeats within a round below 10,000 Check/s. */
const UNIQUE_TOKENS = Math.max(P6_TOKENS, ROUNDS * SECONDS_PER_RUN * 10_000);
const WARM_UP_TOKENS = 2_000;
const TOKEN_LIFETIME_SECONDS = 3_600;
/** Where P8 on Redis keeps its entries. */
const REDIS_KEY_PREFIX = 'authz:bench:dpop:';

/** The bench's DPoP route (P8): GET, view:balance, `sender_constraint: { dpop: required }`. */
const DPOP_PATH = '/dpop/balance';
/**
 * `dpop.max_age` of the bench policy, the longest the schema allows: every proof is signed before the
 * gRPC rounds, so the last round must start within this of the signing (checked after the rounds).
 */
const DPOP_MAX_AGE_SECONDS = 600;
/** Proofs for each timed DPoP round: none repeats within a round below 10,000 Check/s. */
const DPOP_PROOFS_PER_ROUND = SECONDS_PER_RUN * 10_000;
const DPOP_WARM_UP_PROOFS = 2_000;
/** Every proof the bench signs: one for the answer check, the warm-up's and the rounds'. */
const DPOP_PROOFS = 1 + DPOP_WARM_UP_PROOFS + ROUNDS * DPOP_PROOFS_PER_ROUND;
/** Every proof's jti stays in the server's replay cache for max_age, and the cache refuses when full. */
const DPOP_REPLAY_CACHE_SIZE = Math.min(10_000_000, Math.max(1_000, DPOP_PROOFS + 1_000));
const ROUTE_COUNTS = [10, 10_000] as const;

function positiveInteger(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name}: "${text}" is not a positive whole number`);
  return value;
}

/** Marks a target judged against a limit server that was held back. */
const UNSURE = ' (?)';

function microseconds(ns: number): string {
  return ns < 100_000 ? `${(ns / 1000).toFixed(2)} µs` : `${count(ns / 1000)} µs`;
}

/** The gRPC scenarios, by name. */
type GrpcFigure =
  | 'emptyUnique'
  | 'emptyRepeated'
  | 'verifyUnique'
  | 'verifyRepeated'
  | 'authzUnique'
  | 'authzRepeated'
  | 'noToken'
  | 'malformed'
  | 'missingScope'
  | 'unloggedUnique'
  | 'unloggedRepeated'
  | 'dpopRepeated'
  | 'dpopRedis'
  | 'tracedUnique'
  | 'tracedRepeated'
  | 'sampledUnique'
  | 'sampledRepeated';

/** The table: one row per figure, ratios against the limit or baseline measured in the same run. */
function resultRows(figures: {
  grpc: Record<GrpcFigure, ScenarioResult | undefined>;
  openLoop: { rps: number; result: ScenarioResult | undefined } | undefined;
  envoy: { healthz?: HttpResult; allowed?: HttpResult; denied?: HttpResult };
  scaling: ReadonlyMap<number, number>;
  rss: { startMb: number; afterMb: number } | undefined;
}): ResultRow[] {
  const { grpc, envoy } = figures;
  const ratio = (ours: number | undefined, limit: number | undefined) =>
    ours === undefined || limit === undefined ? undefined : ours / limit;
  const throughput = (
    scenario: string,
    ours: ScenarioResult | undefined,
    limit: ScenarioResult | undefined,
    limitName: string,
    target?: number,
  ): ResultRow => {
    const value = ratio(ours?.rps, limit?.rps);
    // A limit server that did not saturate its core measured the load generator as much as itself.
    const unsure = limit !== undefined && limit.busy < SATURATED ? UNSURE : '';
    return {
      scenario,
      ours: ours === undefined ? '' : `${count(ours.rps)} Check/s`,
      limit: limit === undefined ? '' : `${count(limit.rps)} Check/s (${limitName})`,
      ratio: value === undefined ? '' : percent(value),
      target: target === undefined ? '' : `≥ ${percent(target)}`,
      met: target === undefined ? '' : `${met(value === undefined ? undefined : value >= target)}${unsure}`,
    };
  };
  // CPU per Check, the other way round (limit / ours), so that it reads like the throughput ratio.
  const cpu = (
    scenario: string,
    ours: ScenarioResult | undefined,
    limit: ScenarioResult | undefined,
    limitName: string,
  ): ResultRow => {
    const value = ratio(limit?.cpuMicrosPerCall, ours?.cpuMicrosPerCall);
    return {
      scenario,
      ours: ours === undefined ? '' : `${count(ours.cpuMicrosPerCall)} µs`,
      limit: limit === undefined ? '' : `${count(limit.cpuMicrosPerCall)} µs (${limitName})`,
      ratio: value === undefined ? '' : percent(value),
      target: '',
      met: '',
    };
  };
  // CPU per Check added over a baseline on the same machine in the same rounds (e.g. tracing on vs off).
  const cpuDelta = (
    scenario: string,
    ours: ScenarioResult | undefined,
    baseline: ScenarioResult | undefined,
    baselineName: string,
  ): ResultRow => ({
    scenario,
    ours: ours === undefined ? '' : `${count(ours.cpuMicrosPerCall)} µs`,
    limit: baseline === undefined ? '' : `${count(baseline.cpuMicrosPerCall)} µs (${baselineName})`,
    ratio:
      ours === undefined || baseline === undefined
        ? ''
        : `${ours.cpuMicrosPerCall >= baseline.cpuMicrosPerCall ? '+' : '−'}${count(
            Math.abs(ours.cpuMicrosPerCall - baseline.cpuMicrosPerCall),
          )} µs`,
    target: '',
    met: '',
  });
  const rows: ResultRow[] = [
    throughput('P1 unique tokens: authz serve', grpc.authzUnique, grpc.verifyUnique, 'verify limit', 0.85),
    cpu('P1 by server CPU per Check', grpc.authzUnique, grpc.verifyUnique, 'verify limit'),
    throughput(
      'P1 unique tokens, --log-allowed-sample 0',
      grpc.unloggedUnique,
      grpc.verifyUnique,
      'verify limit',
    ),
    throughput(
      'P2 one repeated token: authz serve',
      grpc.authzRepeated,
      grpc.emptyRepeated,
      'empty limit',
      0.8,
    ),
    cpu('P2 by server CPU per Check', grpc.authzRepeated, grpc.emptyRepeated, 'empty limit'),
    throughput(
      'P2 one repeated token, --log-allowed-sample 0',
      grpc.unloggedRepeated,
      grpc.emptyRepeated,
      'empty limit',
    ),
    // Tracing on (issue 22) against the same build with it off, in the same rounds.
    throughput(
      'P1 unique tokens, tracing on, 100 % sampled',
      grpc.tracedUnique,
      grpc.authzUnique,
      'P1, tracing off',
    ),
    cpuDelta(
      'P1 tracing 100 % by server CPU per Check',
      grpc.tracedUnique,
      grpc.authzUnique,
      'P1, tracing off',
    ),
    throughput(
      'P1 unique tokens, tracing on, 1 % sampled',
      grpc.sampledUnique,
      grpc.authzUnique,
      'P1, tracing off',
    ),
    throughput(
      'P2 one repeated token, tracing on, 100 % sampled',
      grpc.tracedRepeated,
      grpc.authzRepeated,
      'P2, tracing off',
    ),
    cpuDelta(
      'P2 tracing 100 % by server CPU per Check',
      grpc.tracedRepeated,
      grpc.authzRepeated,
      'P2, tracing off',
    ),
    throughput(
      'P2 one repeated token, tracing on, 1 % sampled',
      grpc.sampledRepeated,
      grpc.authzRepeated,
      'P2, tracing off',
    ),
    cpuDelta(
      'P2 tracing 1 % by server CPU per Check',
      grpc.sampledRepeated,
      grpc.authzRepeated,
      'P2, tracing off',
    ),
    throughput('deny: no token (401)', grpc.noToken, grpc.emptyRepeated, 'empty limit'),
    throughput('deny: malformed token (401)', grpc.malformed, grpc.emptyRepeated, 'empty limit'),
    throughput('deny: missing scope (403)', grpc.missingScope, grpc.emptyRepeated, 'empty limit'),
    // P8: the cost of a DPoP check over the same server's bearer Check with its token cached.
    throughput(
      'P8 DPoP: one repeated DPoP-bound token, a fresh proof per Check',
      grpc.dpopRepeated,
      grpc.authzRepeated,
      'P2 Bearer, same server',
    ),
    {
      scenario: 'P8 by server CPU per Check',
      ours: grpc.dpopRepeated === undefined ? '' : `${count(grpc.dpopRepeated.cpuMicrosPerCall)} µs`,
      limit:
        grpc.authzRepeated === undefined
          ? ''
          : `${count(grpc.authzRepeated.cpuMicrosPerCall)} µs (P2 Bearer, same server)`,
      ratio:
        grpc.dpopRepeated === undefined || grpc.authzRepeated === undefined
          ? ''
          : `+${count(grpc.dpopRepeated.cpuMicrosPerCall - grpc.authzRepeated.cpuMicrosPerCall)} µs`,
      target: '',
      met: '',
    },
    throughput('P8 DPoP against the empty limit', grpc.dpopRepeated, grpc.emptyRepeated, 'empty limit'),
    // P8 with the shared replay store: the same load, each proof's jti claimed in Redis (one script).
    throughput('P8 DPoP, replay store on Redis', grpc.dpopRedis, grpc.dpopRepeated, 'P8, memory store'),
    {
      scenario: 'P8 Redis by CPU per Check (authz + Redis)',
      ours:
        grpc.dpopRedis === undefined
          ? ''
          : `${count(grpc.dpopRedis.cpuMicrosPerCall)} + ${count(grpc.dpopRedis.helperCpuMicrosPerCall)} µs`,
      limit:
        grpc.dpopRepeated === undefined
          ? ''
          : `${count(grpc.dpopRepeated.cpuMicrosPerCall)} µs (P8, memory store)`,
      ratio:
        grpc.dpopRedis === undefined || grpc.dpopRepeated === undefined
          ? ''
          : `+${count(
              grpc.dpopRedis.cpuMicrosPerCall +
                grpc.dpopRedis.helperCpuMicrosPerCall -
                grpc.dpopRepeated.cpuMicrosPerCall,
            )} µs`,
      target: '',
      met: '',
    },
    {
      scenario: 'P8 Redis latency, 50 Checks in flight',
      ours:
        grpc.dpopRedis === undefined
          ? ''
          : `p50 ${ms(grpc.dpopRedis.p50Ms)}, p99 ${ms(grpc.dpopRedis.p99Ms)}`,
      limit:
        grpc.dpopRepeated === undefined
          ? ''
          : `p50 ${ms(grpc.dpopRepeated.p50Ms)}, p99 ${ms(grpc.dpopRepeated.p99Ms)} (P8, memory store)`,
      ratio: '',
      target: '',
      met: '',
    },
    throughput('P8 Redis against the empty limit', grpc.dpopRedis, grpc.emptyRepeated, 'empty limit'),
    throughput(
      'limit servers: verify vs empty, unique tokens',
      grpc.verifyUnique,
      grpc.emptyUnique,
      'empty limit',
    ),
  ];

  const open = figures.openLoop;
  rows.push({
    scenario: `P7 open loop at ½ capacity (${open === undefined ? '?' : count(open.rps)} Check/s)`,
    ours: open?.result === undefined ? '' : `p50 ${ms(open.result.p50Ms)}, p99 ${ms(open.result.p99Ms)}`,
    limit: '',
    ratio: '',
    target: 'p99 ≤ 2 ms',
    met: met(open?.result === undefined ? undefined : open.result.p99Ms <= 2),
  });

  const { healthz, allowed, denied } = envoy;
  const perSecond = (result: HttpResult | undefined) =>
    result === undefined ? '' : `${count(result.rps)} req/s`;
  const allowedShare = ratio(allowed?.rps, healthz?.rps);
  const deniedShare = ratio(denied?.rps, healthz?.rps);
  rows.push(
    {
      scenario: 'P4 Envoy: allowed GET /balance',
      ours: perSecond(allowed),
      limit: healthz === undefined ? '' : `${perSecond(healthz)} (/healthz, no ext_authz)`,
      ratio: allowedShare === undefined ? '' : percent(allowedShare),
      target: '≥ 45%',
      met: met(allowedShare === undefined ? undefined : allowedShare >= 0.45),
    },
    {
      scenario: `P4 Envoy: mean latency at c=${H2LOAD_CLIENTS}`,
      ours: allowed === undefined ? '' : ms(allowed.meanMs),
      limit: healthz === undefined ? '' : `${ms(healthz.meanMs)} (/healthz)`,
      ratio: allowed === undefined || healthz === undefined ? '' : `+${ms(allowed.meanMs - healthz.meanMs)}`,
      target: '',
      met: '',
    },
    {
      scenario: 'P4 Envoy: denied, no token (401)',
      ours: perSecond(denied),
      limit: healthz === undefined ? '' : `${perSecond(healthz)} (/healthz)`,
      ratio: deniedShare === undefined ? '' : percent(deniedShare),
      target: '',
      met: '',
    },
  );

  const few = figures.scaling.get(ROUTE_COUNTS[0])!;
  const many = figures.scaling.get(ROUTE_COUNTS[1])!;
  rows.push({
    scenario: `P5 decide: last of ${count(ROUTE_COUNTS[1])} routes`,
    ours: microseconds(many),
    limit: `${microseconds(few)} (${ROUTE_COUNTS[0]} routes)`,
    ratio: `${(many / few).toFixed(2)}x`,
    target: '≤ 1.2x',
    met: met(many / few <= 1.2),
  });
  const { rss } = figures;
  rows.push({
    scenario: `P6 RSS after ${count(P6_TOKENS)} distinct tokens`,
    ours: rss === undefined ? '' : `${rss.afterMb.toFixed(0)} MB`,
    limit: rss === undefined ? '' : `${rss.startMb.toFixed(0)} MB (after start)`,
    ratio: '',
    target: '≤ 150 MB',
    met: met(rss === undefined ? undefined : rss.afterMb <= 150),
  });
  return rows;
}

/**
 * The line of a server's output, in the message of the error `startAuthzServer` threw when it exited at
 * start, that names one of `keys` (a build refusing a policy key it does not know); undefined when none
 * does. The first line of the message is the bench's own; the process's output follows.
 */
function refusal(error: unknown, keys: RegExp): string | undefined {
  const output = error instanceof Error ? error.message.split('\n').slice(1) : [];
  return output.find((line) => keys.test(line))?.trim();
}

/**
 * The decision lines (src/log/decision-log.ts: one JSON line per decision) for `path` in a server's output:
 * how many allowed, and the refusals by reason.
 */
function decisionsFor(output: string, path: string): { allowed: number; refused: Map<string, number> } {
  const marker = `"path":${JSON.stringify(path)}`;
  let allowed = 0;
  const refused = new Map<string, number>();
  for (const line of output.split('\n')) {
    if (!line.includes(marker)) continue;
    let entry: { event?: unknown; decision?: unknown; reason?: unknown; path?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if (entry.event !== 'decision' || entry.path !== path) continue;
    if (entry.decision === 'allow') allowed++;
    else refused.set(String(entry.reason), (refused.get(String(entry.reason)) ?? 0) + 1);
  }
  return { allowed, refused };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const target = path.resolve(process.env['BENCH_TARGET'] ?? repoRoot);
  const cli = path.join(target, 'dist', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" in ${target}`);
  const tools = findTools();
  const cpus = planCpus();
  const progress = (message: string) => process.stderr.write(`${message}\n`);
  const heading = [
    ...describeRun(target, tools, cpus),
    `- each scenario timed for ${ROUNDS} interleaved rounds of ${SECONDS_PER_RUN} s, medians shown; ghz 50 ` +
      `calls in flight on one connection; h2load --h1 -c ${H2LOAD_CLIENTS}`,
  ];
  for (const line of heading) progress(line);

  const dir = await mkdtemp(path.join(tmpdir(), 'authz-bench-'));
  const notes: string[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  let logNumber = 0;
  const context: BenchContext = {
    tools,
    cpus,
    target,
    cli,
    dir,
    logFile: (name) => path.join(dir, `${++logNumber}-${name.replace(/[^a-z0-9]+/gi, '-')}.log`),
    progress,
    note: (message) => {
      notes.push(message);
      progress(`  note: ${message}`);
    },
    onCleanup: (stop) => cleanups.push(stop),
  };

  try {
    // Tokens first, on every core: signing is most of the bench's set-up time.
    const signingStarted = Date.now();
    const key = await generateIssuerKey();
    const sign = (tokens: number, prefix: string, scope: string, claims?: object) =>
      signAccessTokens(key, {
        count: tokens,
        prefix,
        scope,
        lifetimeSeconds: TOKEN_LIFETIME_SECONDS,
        claims,
      });
    const uniqueTokens = await sign(UNIQUE_TOKENS, 'unique', 'view:balance');
    const warmUpTokens = await sign(WARM_UP_TOKENS, 'warm-up', 'view:balance');
    const [repeatedToken] = (await sign(1, 'repeated', 'view:balance')) as [string];
    const [otherScopeToken] = (await sign(1, 'other-scope', 'view:statements')) as [string];
    // P8: a token bound to the client's key (cnf.jkt, its RFC 7638 thumbprint) and a proof for every Check
    // of the DPoP rounds, signed last so that they are as fresh as can be when the rounds start.
    const dpopKey = await generateDpopClientKey();
    const [dpopToken] = (await sign(1, 'dpop-bound', 'view:balance', {
      cnf: { jkt: dpopKey.jkt },
    })) as [string];
    const tokensSigned = Date.now();
    const dpop = await signDpopProofs(dpopKey, {
      count: DPOP_PROOFS,
      prefix: 'proof',
      method: 'GET',
      uri: `${BENCH_PUBLIC_ORIGIN}${DPOP_PATH}`,
      accessToken: dpopToken,
    });
    progress(
      `signed ${count(UNIQUE_TOKENS + WARM_UP_TOKENS + 3)} RS256 tokens in ` +
        `${((tokensSigned - signingStarted) / 1000).toFixed(1)} s, ${count(DPOP_PROOFS)} ES256 DPoP ` +
        `proofs in ${((Date.now() - tokensSigned) / 1000).toFixed(1)} s`,
    );
    if (cpus !== undefined) pinThisProcess(cpus.load);

    const jwks = await startKeyServer([key.publicJwk]);
    context.onCleanup(() => jwks.close());
    // The demo policy's routes, trusting the bench's issuer. Without `accept_risks`, which changes no
    // decision, so that a build from before it (BENCH_TARGET) accepts the same routes.
    const demo = parse(await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8')) as Record<string, unknown>;
    const demoRoutes = (demo['routes'] as Record<string, unknown>[]).map(
      ({ accept_risks: _, ...route }) => route,
    );
    // Plus, for P8, a route that requires DPoP, the public origin proofs name, and proofs accepted for as
    // long as the schema allows, with room in the replay cache for every one of them.
    const policy = {
      ...demo,
      public_origin: BENCH_PUBLIC_ORIGIN,
      dpop: {
        ...(demo['dpop'] as object | undefined),
        max_age: `${DPOP_MAX_AGE_SECONDS}s`,
        replay_cache_size: DPOP_REPLAY_CACHE_SIZE,
        // P8's one client is the only one: its key and its user may hold the whole store, not the 2% and 5%
        // shares that keep one client from crowding out others (else its proofs are answered 429).
        replay_cache_per_key: DPOP_REPLAY_CACHE_SIZE,
        replay_cache_per_subject: DPOP_REPLAY_CACHE_SIZE,
      },
      routes: [
        ...demoRoutes,
        {
          methods: ['GET'],
          path: DPOP_PATH,
          scopes: ['view:balance'],
          sender_constraint: { dpop: 'required' },
        },
      ],
    };
    // A build from before sender-constrained tokens (BENCH_TARGET) gets the demo routes without them.
    const legacyKeys = new Set(['public_origin', 'sender_constraint', 'dpop']);
    const legacyPolicy = {
      ...Object.fromEntries(Object.entries(demo).filter(([name]) => !legacyKeys.has(name))),
      routes: demoRoutes.map(({ sender_constraint: _, ...route }) => route),
    };
    const issuer = {
      issuer: BENCH_ISSUER,
      audiences: [BENCH_AUDIENCE],
      jwks_uri: jwks.url,
      algorithms: ['RS256'],
      require_typ: 'at+jwt',
    };
    const policyFiles = async (name: string, document: object) => {
      const files = {
        main: path.join(dir, `${name}.yaml`),
        tokenCache: path.join(dir, `${name}-token-cache.yaml`),
      };
      await writeFile(files.main, stringify({ ...document, issuers: [issuer] }));
      await writeFile(
        files.tokenCache,
        stringify({ ...document, issuers: [{ ...issuer, token_cache: { max_entries: P6_TOKENS } }] }),
      );
      return files;
    };
    const legacyPolicyFiles = await policyFiles('policy-without-dpop', legacyPolicy);
    // The policy the servers get: this one unless the measured build refuses the DPoP keys.
    let { main: policyFile, tokenCache: cachePolicyFile } = await policyFiles('policy', policy);

    const balance = (id: string, authorization?: string) =>
      checkRequest('GET', '/balance', id, authorization);
    const dataFile = (name: string, requests: object[]) =>
      writeDataFile(path.join(dir, `${name}.bin`), requests);
    const uniqueRequests = uniqueTokens.map((token, i) => balance(`unique-${i}`, `Bearer ${token}`));
    const perRound = Math.floor(UNIQUE_TOKENS / ROUNDS);
    const uniqueRounds: DataFile[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      uniqueRounds.push(
        await dataFile(
          `unique-round-${round}`,
          uniqueRequests.slice(round * perRound, (round + 1) * perRound),
        ),
      );
    }
    const data = {
      unique: await dataFile('unique', uniqueRequests),
      warmUp: await dataFile(
        'warm-up',
        warmUpTokens.map((token, i) => balance(`warm-up-${i}`, `Bearer ${token}`)),
      ),
      repeated: await dataFile('repeated', [balance('repeated', `Bearer ${repeatedToken}`)]),
      noToken: await dataFile('no-token', [balance('no-token')]),
      malformed: await dataFile('malformed', [balance('malformed', 'Bearer not-a-jwt')]),
      missingScope: await dataFile('missing-scope', [balance('missing-scope', `Bearer ${otherScopeToken}`)]),
    };
    // P8: every request its own proof (a proof is good once): the first for the answer check, then the
    // warm-up's, then each round's.
    const dpopCheck = (id: string, proof: string) =>
      checkRequest('GET', DPOP_PATH, id, `DPoP ${dpopToken}`, { dpop: proof });
    const dpopProbe = dpopCheck('dpop-probe', dpop.proofs[0]!);
    const dpopRequests = (name: string, from: number, to: number) =>
      dataFile(
        name,
        dpop.proofs.slice(from, to).map((proof, i) => dpopCheck(`${name}-${i}`, proof)),
      );
    const dpopWarmUp = await dpopRequests('dpop-warm-up', 1, 1 + DPOP_WARM_UP_PROOFS);
    const dpopRounds: DataFile[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const from = 1 + DPOP_WARM_UP_PROOFS + round * DPOP_PROOFS_PER_ROUND;
      dpopRounds.push(await dpopRequests(`dpop-round-${round}`, from, from + DPOP_PROOFS_PER_ROUND));
    }

    // ---- gRPC: every server up at once on the server core (idle ones cost nothing), interleaved rounds ----

    progress(`gRPC Check with ghz, ${ROUNDS} interleaved rounds of ${SECONDS_PER_RUN} s:`);
    const empty = await startLimitServer(context, 'empty', key.publicJwk);
    const verify = await startLimitServer(context, 'verify', key.publicJwk);
    // The verify limit must refuse a token whose signature does not match, or it is not verifying.
    const forged = `Bearer ${repeatedToken.slice(0, -4)}AAAA`;
    if (answers(await verify.client.check(balance('forged', forged)), ALLOW)) {
      throw new Error('the verify limit server accepted a token with a wrong signature');
    }
    let authz: GrpcServer;
    let dpopAccepted = true;
    try {
      authz = await startAuthzServer(context, 'authz serve', policyFile);
    } catch (error) {
      const reason = refusal(error, /unknown key "(?:public_origin|sender_constraint|dpop)"/);
      if (reason === undefined) throw error;
      context.note(
        `P8: this build does not accept the DPoP keys in the policy (${reason}); DPoP not measured, ` +
          'and every server gets the demo routes without sender_constraint',
      );
      dpopAccepted = false;
      ({ main: policyFile, tokenCache: cachePolicyFile } = legacyPolicyFiles);
      authz = await startAuthzServer(context, 'authz serve', policyFile);
    }
    const unlogged = await startAuthzServer(context, 'authz serve --log-allowed-sample 0', policyFile, [
      '--log-allowed-sample',
      '0',
    ]);
    // Tracing (issue 22): the same server with the OTEL_* variables on, exporting over OTLP/HTTP (protobuf)
    // to a real OpenTelemetry Collector, which drops what it receives. The collector runs on the load core:
    // it stands for a collector elsewhere, whose CPU is not the sidecar's. ghz sends no traceparent, so
    // every Check starts a trace: all of them sampled, then 1 % (parentbased_traceidratio).
    const collector = await startOtelCollector({
      received: 'discard',
      ...(context.cpus === undefined ? {} : { cpu: context.cpus.load }),
    });
    context.onCleanup(collector.stop);
    const tracingOn = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: collector.otlpHttpUrl };
    const traced = await startAuthzServer(context, 'authz serve, tracing 100 %', policyFile, [], tracingOn);
    const sampled = await startAuthzServer(context, 'authz serve, tracing 1 %', policyFile, [], {
      ...tracingOn,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.01',
    });
    // P8 on Redis: a third server, the same policy but for its replay store, a redis-server of its own on
    // the server core. It gets the same proofs as the memory-store server, which is sound: each server
    // remembers the proofs it accepted in its own store (the first one's memory, this one's Redis, which
    // no other process uses and which starts empty), so each sees every proof once.
    let redis: RedisServer | undefined;
    let authzRedis: GrpcServer | undefined;
    if (dpopAccepted) {
      redis = await startRedisServer(context.cpus === undefined ? {} : { cpu: context.cpus.server });
      context.onCleanup(redis.stop);
      // A replay history begun an hour ago, as on a Redis that has been serving: the proofs are signed
      // before the rounds, minutes before their first claim, and a Redis whose history begins with that
      // claim refuses proofs issued before it (docs/sender-constraints.md, "A Redis that lost its data").
      await redis.command('SET', `${REDIS_KEY_PREFIX}since`, String(Date.now() - 3_600_000));
      const redisPolicyFile = path.join(dir, 'policy-redis-replay-store.yaml');
      await writeFile(
        redisPolicyFile,
        stringify({
          ...policy,
          dpop: {
            ...policy.dpop,
            replay_store: { type: 'redis', url: redis.url, key_prefix: REDIS_KEY_PREFIX },
          },
          issuers: [issuer],
        }),
      );
      try {
        authzRedis = await startAuthzServer(context, 'authz serve (Redis replay store)', redisPolicyFile);
      } catch (error) {
        const reason = refusal(error, /replay_store/);
        if (reason === undefined) throw error;
        context.note(`P8 on Redis: this build does not accept dpop.replay_store (${reason}); not measured`);
      }
    }
    for (const server of [empty, verify]) await warmUp(context, server, data.repeated, WARM_UP_SECONDS);
    for (const server of [authz, unlogged, traced, sampled])
      await warmUp(context, server, data.warmUp, WARM_UP_SECONDS);
    for (const server of dpopAccepted ? [authz, ...(authzRedis === undefined ? [] : [authzRedis])] : [])
      await warmUp(context, server, dpopWarmUp, { total: dpopWarmUp.count });

    const scenario = (
      server: GrpcServer,
      label: string,
      files: DataFile[],
      expected = ALLOW,
      unseenTokens = false,
    ): GrpcScenario => ({ server, label, data: files, expected, unseenTokens });
    // Only authz caches verified tokens: a limit server may be sent a token twice.
    const grpc: Record<Exclude<GrpcFigure, 'dpopRepeated' | 'dpopRedis'>, GrpcScenario> & {
      dpopRepeated?: GrpcScenario;
      dpopRedis?: GrpcScenario;
    } = {
      emptyUnique: scenario(empty, 'unique tokens', uniqueRounds),
      emptyRepeated: scenario(empty, 'one repeated token', [data.repeated]),
      verifyUnique: scenario(verify, 'unique tokens', uniqueRounds),
      verifyRepeated: scenario(verify, 'one repeated token', [data.repeated]),
      authzUnique: scenario(authz, 'unique tokens', uniqueRounds, ALLOW, true),
      authzRepeated: scenario(authz, 'one repeated token', [data.repeated]),
      ...(dpopAccepted
        ? {
            // Proofs are good once: the answer check has its own, and a round must not run out of them.
            dpopRepeated: {
              ...scenario(authz, 'DPoP: one repeated bound token, fresh proofs', dpopRounds, ALLOW, true),
              probe: dpopProbe,
            },
          }
        : {}),
      ...(authzRedis !== undefined && redis !== undefined
        ? {
            // Its own probe too: proofs[0], as the memory store's server got, is new to Redis.
            dpopRedis: {
              ...scenario(
                authzRedis,
                'DPoP on Redis: one bound token, fresh proofs',
                dpopRounds,
                ALLOW,
                true,
              ),
              probe: dpopProbe,
              helpers: [redis.process],
            },
          }
        : {}),
      noToken: scenario(authz, 'deny: no token', [data.noToken], UNAUTHENTICATED_401),
      malformed: scenario(authz, 'deny: malformed token', [data.malformed], UNAUTHENTICATED_401),
      missingScope: scenario(authz, 'deny: missing scope', [data.missingScope], PERMISSION_DENIED_403),
      unloggedUnique: scenario(unlogged, 'unique tokens', uniqueRounds, ALLOW, true),
      unloggedRepeated: scenario(unlogged, 'one repeated token', [data.repeated]),
      tracedUnique: scenario(traced, 'unique tokens', uniqueRounds, ALLOW, true),
      tracedRepeated: scenario(traced, 'one repeated token', [data.repeated]),
      sampledUnique: scenario(sampled, 'unique tokens', uniqueRounds, ALLOW, true),
      sampledRepeated: scenario(sampled, 'one repeated token', [data.repeated]),
    };
    // Every proof is signed before the rounds: warn now when they will likely have expired by the last one
    // (ghz takes 1-4 s here to start and load its requests, on top of the timed seconds of each run).
    const roundsEnd = Date.now() / 1000 + Object.values(grpc).length * ROUNDS * (SECONDS_PER_RUN + 3);
    if (grpc.dpopRepeated !== undefined && roundsEnd - dpop.issuedAt > DPOP_MAX_AGE_SECONDS) {
      progress(
        `  warning: the rounds will likely end after the DPoP proofs' max_age ` +
          `of ${DPOP_MAX_AGE_SECONDS} s; P8 will not be shown (a shorter BENCH_SECONDS keeps them valid)`,
      );
    }
    const measured = await measureInterleaved(context, Object.values(grpc), {
      rounds: ROUNDS,
      secondsPerRun: SECONDS_PER_RUN,
    });
    // A proof older than max_age is refused, and ghz counts the refusal as a gRPC OK: when the rounds ended
    // after the proofs expired, the DPoP figures may be refusals (BENCH_SECONDS too long for one signing).
    // The DPoP scenarios, each with its server and its name in the notes.
    const dpopScenarios = [
      { name: 'P8', scenario: grpc.dpopRepeated, server: authz },
      { name: 'P8 on Redis', scenario: grpc.dpopRedis, server: authzRedis },
    ].filter(
      (item): item is { name: string; scenario: GrpcScenario; server: GrpcServer } =>
        item.scenario !== undefined && item.server !== undefined && measured.has(item.scenario),
    );
    const proofAge = Date.now() / 1000 - dpop.issuedAt;
    for (const { name, scenario: item } of dpopScenarios) {
      if (proofAge <= DPOP_MAX_AGE_SECONDS) continue;
      context.note(
        `${name}: not shown: the rounds ended ${count(proofAge)} s after the DPoP proofs were signed, ` +
          `beyond their max_age of ${DPOP_MAX_AGE_SECONDS} s (a shorter BENCH_SECONDS keeps them valid)`,
      );
      measured.delete(item);
    }
    for (const server of [
      empty,
      verify,
      authz,
      unlogged,
      traced,
      sampled,
      ...(authzRedis === undefined ? [] : [authzRedis]),
    ])
      await server.stop();
    // Spans that did not reach the collector would make the tracing rows measure less than they claim.
    for (const server of [traced, sampled]) {
      const failing = server.process.output().includes('"event":"trace_export","state":"failing"');
      if (failing) context.note(`${server.name}: some trace exports failed (its log's trace_export lines)`);
    }
    await collector.stop();
    await redis?.stop();
    // ghz counts a refusal as a gRPC OK, and proofs are good once: the decision lines of the stopped servers
    // (flushed at exit) say whether every DPoP Check, warm-up and rounds, was allowed (on Redis: none
    // refused as a replay, over a share, or because the store did not answer in time).
    for (const { name, scenario: item, server } of dpopScenarios) {
      if (!measured.has(item)) continue;
      const { allowed, refused } = decisionsFor(server.process.output(), DPOP_PATH);
      if (refused.size > 0) {
        const reasons = [...refused].map(([reason, times]) => `${reason} ${count(times)}x`).join(', ');
        context.note(
          `${name}: not shown: some DPoP Checks were refused (${reasons}), which ghz counts as OK`,
        );
        measured.delete(item);
      } else if (allowed === 0) {
        context.note(
          `${name}: no decision line for ${DPOP_PATH} in the server's log: the answers are unconfirmed`,
        );
      } else {
        progress(
          `  ${name}: ${count(allowed)} DPoP Checks allowed, none refused (the server's decision lines)`,
        );
      }
    }

    // ---- P7: an open loop at half of authz's capacity, a fresh process so that no token is cached yet ----

    let openLoop: { rps: number; result: ScenarioResult | undefined } | undefined;
    const capacity = measured.get(grpc.authzUnique)?.rps;
    if (capacity === undefined) context.note('P7: not measured, as authz serve with unique tokens was not');
    else {
      const rps = Math.round(capacity / 2);
      progress(`Open loop at ${count(rps)} Check/s for ${SECONDS} s (P7):`);
      const server = await startAuthzServer(context, 'authz serve (open loop)', policyFile);
      await warmUp(context, server, data.warmUp, WARM_UP_SECONDS);
      openLoop = {
        rps,
        result: await measureOnce(
          context,
          scenario(server, `unique tokens at ${count(rps)} Check/s`, [data.unique], ALLOW, true),
          { seconds: SECONDS, rps },
        ),
      };
      await server.stop();
    }

    // ---- P6: RSS after 100,000 distinct valid tokens (all of them cached, where there is a cache) ----

    progress(`RSS after ${count(P6_TOKENS)} distinct tokens (P6):`);
    let cached: GrpcServer;
    try {
      cached = await startAuthzServer(context, 'authz serve (cache of 100k)', cachePolicyFile);
    } catch (error) {
      // A build from before the token cache refuses the key; anything else is a real failure.
      const reason = refusal(error, /token_cache/);
      if (reason === undefined) throw error;
      context.note(
        `P6: this build does not accept token_cache: { max_entries: ${P6_TOKENS} } in the policy ` +
          `(${reason}); measured with its defaults`,
      );
      cached = await startAuthzServer(context, 'authz serve', policyFile);
    }
    const startMb = cached.process.rssKib() / 1024;
    await measureOnce(
      context,
      scenario(cached, `${count(P6_TOKENS)} distinct tokens`, [data.unique], ALLOW, true),
      { total: P6_TOKENS },
    );
    const rss = { startMb, afterMb: cached.process.rssKib() / 1024 };
    progress(`  RSS ${rss.startMb.toFixed(0)} MB after start, ${rss.afterMb.toFixed(0)} MB after the tokens`);
    await cached.stop();

    // ---- P4: HTTP through the real Envoy ----

    progress(
      `HTTP through Envoy with h2load --h1 -c ${H2LOAD_CLIENTS}, ` +
        `${ROUNDS} interleaved rounds of ${SECONDS_PER_RUN} s:`,
    );
    const http = {
      healthz: { label: 'GET /healthz (ext_authz off)', path: '/healthz', headers: [], status: 200 },
      allowed: {
        label: 'GET /balance, allowed (one token)',
        path: '/balance',
        headers: [`authorization: Bearer ${repeatedToken}`],
        status: 200,
      },
      denied: { label: 'GET /balance, no token (401)', path: '/balance', headers: [], status: 401 },
    } satisfies Record<string, HttpScenario>;
    const throughEnvoy = await measureThroughEnvoy(context, {
      policyFile,
      scenarios: Object.values(http),
      clients: H2LOAD_CLIENTS,
      rounds: ROUNDS,
      secondsPerRun: SECONDS_PER_RUN,
      warmUpSeconds: HTTP_WARM_UP_SECONDS,
    });

    // ---- P5: in process, nothing else running ----

    progress('Deciding in process (P5):');
    const scaling = await measureRouteScaling(target, ROUTE_COUNTS);
    for (const [routes, ns] of scaling)
      progress(`  ${count(routes).padStart(6)} routes: ${count(ns)} ns per decision`);

    const rows = resultRows({
      grpc: Object.fromEntries(
        Object.entries(grpc).map(([name, item]) => [name, measured.get(item)]),
      ) as Record<GrpcFigure, ScenarioResult | undefined>,
      openLoop,
      envoy: {
        healthz: throughEnvoy.get(http.healthz.label),
        allowed: throughEnvoy.get(http.allowed.label),
        denied: throughEnvoy.get(http.denied.label),
      },
      scaling,
      rss,
    });
    const report = [
      '',
      `## authz bench, ${new Date(startedAt).toISOString().replace(/\.\d+Z$/, 'Z')}`,
      '',
      ...heading,
      `- the whole bench took ${((Date.now() - startedAt) / 60_000).toFixed(1)} min`,
      '',
      markdownTable(rows),
      ...(rows.some((row) => row.met.endsWith(UNSURE))
        ? [
            '',
            `${UNSURE.trim()}: the limit server used less than ${percent(SATURATED)} of its core (see the notes), ` +
              "so its figure, and the ratio, are partly the load generator's: read the CPU per Check row too.",
          ]
        : []),
      ...(notes.length === 0 ? [] : ['', 'Notes:', ...notes.map((note) => `- ${note}`)]),
      '',
    ];
    process.stdout.write(report.join('\n'));
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
