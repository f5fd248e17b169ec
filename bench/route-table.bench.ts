import { pino } from 'pino';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { createKeyRing } from '../src/authn/key-ring.js';
import { bearerTokenVerifier } from '../src/authn/verify-access-token.js';
import { createCheckHandler } from '../src/envoy/check-handler.js';
import type { CheckRequestMessage } from '../src/envoy/check-messages.js';
import { compilePolicy } from '../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../src/policy/compiled-policy.js';
import { matchRoute } from '../src/policy/match-route.js';
import { generateTestKey, signTestToken } from '../test/kit/tokens.js';
import { fillerRoute } from './route-scaling.js';

// The decision path in process, for a policy of 10 routes against one of 10,000 (issue 10, target P5:
// "10,000 routes decide within 1.2x the time of 10 routes"). Self-contained: no Envoy, no socket; the
// issuer's key set is served by an injected fetch, and every token is verified in full (no token cache).
//
//   npx vitest bench --run --project e2e bench/route-table.bench.ts
//
// Two kinds of figures: tinybench's, per scenario (read as ratios within one group); and, printed at the
// end, the P5 ratios measured in interleaved batches (10 routes, then 10,000, then 10 again...), so that
// both sizes see the same machine load and the same state of the JIT and the garbage collector.
//
// A CPU profile of one scenario (`-t` selects it; one .cpuprofile per thread in the directory):
//
//   node --cpu-prof --cpu-prof-dir=/tmp/authz-profile node_modules/vitest/vitest.mjs bench --run \
//     --project e2e --pool=threads bench/route-table.bench.ts -t 'no token, 10000 routes$'
//
// In both policies the measured requests are decided by the last routes of the file (the worst case for a
// scan in file order) or by none (every route is ruled out). The filler routes look like a large API
// gateway's: many services under literal prefixes, with parameters, rest patterns and method lists.

const ISSUER = 'https://bench.example/';
const AUDIENCE = 'https://my-banking-api';
const JWKS_URI = 'https://bench.example/jwks.json';

/** The routes that decide the measured requests, always the last ones in the file. */
const DECIDING_ROUTES = [
  '{ methods: [GET], path: /balance, scopes: [view:balance] }',
  "{ methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance] }",
];

function policyWithRoutes(count: number): CompiledPolicy {
  const routes = [
    ...Array.from({ length: count - DECIDING_ROUTES.length }, (_, i) => fillerRoute(i)),
    ...DECIDING_ROUTES,
  ];
  const text = [
    'version: 1',
    'realm: bank-api',
    'issuers:',
    `  - issuer: ${ISSUER}`,
    `    audiences: [${AUDIENCE}]`,
    `    jwks_uri: ${JWKS_URI}`,
    '    algorithms: [RS256]',
    'routes:',
    ...routes.map((route) => `  - ${route}`),
    '',
  ].join('\n');
  return compilePolicy(text, `bench-${count}.yaml`);
}

const checkRequest = (method: string, pathname: string, authorization?: string): CheckRequestMessage => ({
  attributes: {
    request: {
      http: {
        id: 'bench',
        method,
        path: pathname,
        host: 'bank',
        headers: authorization === undefined ? {} : { authorization },
      },
    },
  },
});

type Check = ReturnType<typeof createCheckHandler>;
const SIZES = [10, 10_000] as const;
type Size = (typeof SIZES)[number];
const policies = new Map<Size, CompiledPolicy>();
const handlers = new Map<Size, Check>();
let authorization = '';

const check = (size: Size): Check => handlers.get(size)!;
const policy = (size: Size): CompiledPolicy => policies.get(size)!;

/** The measured scenarios: one request each, sent through the check handler (or matchRoute alone). */
const SCENARIOS: readonly { name: string; run: (size: Size) => unknown }[] = [
  {
    name: 'allowed',
    run: (size) => check(size)(checkRequest('GET', '/accounts/42/balance?x=1', authorization)),
  },
  { name: 'no token', run: (size) => check(size)(checkRequest('GET', '/balance')) },
  { name: 'no route', run: (size) => check(size)(checkRequest('GET', '/svc1/nothing/here')) },
  { name: 'matchRoute', run: (size) => matchRoute(policy(size).services[0]!, 'GET', '/accounts/42/balance') },
];

beforeAll(async () => {
  const key = await generateTestKey('bench-key');
  // A long lifetime: the token must stay valid however long the benchmark runs.
  const token = await signTestToken(
    key,
    { issuer: ISSUER, audience: AUDIENCE },
    { claims: { scope: 'view:balance', exp: Math.floor(Date.now() / 1000) + 86_400 } },
  );
  authorization = `Bearer ${token}`;
  const keySet = JSON.stringify({ keys: [key.publicJwk] });
  for (const size of SIZES) {
    const started = performance.now();
    const compiled = policyWithRoutes(size);
    console.log(`compiled ${size} routes in ${(performance.now() - started).toFixed(1)} ms`);
    const keyRing = createKeyRing(compiled, {
      fetchKeySet: async () => new Response(keySet, { headers: { 'content-type': 'application/json' } }),
      now: Date.now,
    });
    await keyRing.prefetch();
    const verifier = bearerTokenVerifier({
      policy: compiled,
      keysFor: (issuer) => keyRing.keysFor(issuer),
      now: Date.now,
    });
    policies.set(size, compiled);
    handlers.set(
      size,
      createCheckHandler({
        active: () => ({ policy: compiled, verifier }),
        logger: pino({ level: 'silent' }),
        now: Date.now,
      }),
    );
  }
  // Each scenario must be decided as labelled, or its figure would mean nothing.
  for (const size of SIZES) {
    const allowed = await check(size)(checkRequest('GET', '/accounts/42/balance', authorization));
    const noToken = await check(size)(checkRequest('GET', '/balance'));
    const noRoute = await check(size)(checkRequest('GET', '/svc1/nothing/here'));
    if (
      allowed.status.code !== 0 ||
      noToken.denied_response?.status.code !== 401 ||
      noRoute.denied_response?.status.code !== 403
    ) {
      throw new Error(`the ${size}-route policy does not decide the benchmark requests as expected`);
    }
  }
}, 120_000);

const GROUPS: Record<string, string> = {
  allowed: 'allowed: a valid RS256 token, the last route matches (CheckRequest -> CheckResponse)',
  'no token': 'no token on a protected route: 401, the last route matches',
  'no route': 'no route matches: 403',
  matchRoute: 'matchRoute alone: the last route matches',
};
for (const scenario of SCENARIOS) {
  describe(GROUPS[scenario.name]!, () => {
    for (const size of SIZES) {
      bench(`${scenario.name}, ${size} routes`, async () => {
        await scenario.run(size);
      });
    }
  });
}

/** Rounds of interleaved batches per scenario; the median of their ratios is reported. */
const ROUNDS = 15;
/** The least time one batch runs, in milliseconds. */
const BATCH_MS = 20;

/** Microseconds per call of one scenario at one size, over a batch of at least BATCH_MS. */
async function batchMicroseconds(run: (size: Size) => unknown, size: Size): Promise<number> {
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    const result = run(size);
    if (result instanceof Promise) await result;
    calls++;
    elapsed = performance.now() - started;
  } while (elapsed < BATCH_MS || calls < 5);
  return (elapsed * 1000) / calls;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

afterAll(async () => {
  if (handlers.size === 0) return;
  const lines = [
    `P5: 10,000 routes against 10, interleaved batches, median of ${ROUNDS} rounds (target: at most 1.2x)`,
    `${'scenario'.padEnd(12)}${'10 routes'.padStart(14)}${'10,000 routes'.padStart(16)}${'ratio'.padStart(9)}`,
  ];
  for (const scenario of SCENARIOS) {
    const small: number[] = [];
    const large: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which size goes first, so neither always follows the other's garbage.
      const order: Size[] = round % 2 === 0 ? [10, 10_000] : [10_000, 10];
      const times = new Map<Size, number>();
      for (const size of order) times.set(size, await batchMicroseconds(scenario.run, size));
      small.push(times.get(10)!);
      large.push(times.get(10_000)!);
      ratios.push(times.get(10_000)! / times.get(10)!);
    }
    const micro = (value: number) => `${value.toFixed(value < 10 ? 2 : 0)} µs`.padStart(14);
    lines.push(
      `${scenario.name.padEnd(12)}${micro(median(small))}${micro(median(large)).padStart(16)}${`${median(ratios).toFixed(2)}x`.padStart(9)}`,
    );
  }
  console.log(lines.join('\n'));
}, 600_000);
