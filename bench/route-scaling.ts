import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as AuthorizeModule from '../src/authz/authorize.js';
import type * as CompilePolicyModule from '../src/policy/compile-policy.js';

/** Nanoseconds per decision, by number of routes in the policy. */
export type RouteScaling = ReadonlyMap<number, number>;

/** The i-th filler route: five shapes per service, as in a large gateway's policy (they share their first segment). */
export function fillerRoute(i: number): string {
  const service = `/svc${Math.floor(i / 5)}`;
  switch (i % 5) {
    case 0:
      return `{ methods: [GET], path: '${service}/items/{id}', scopes: [read] }`;
    case 1:
      return `{ methods: [POST, PUT], path: '${service}/items', scopes: [write] }`;
    case 2:
      return `{ path: '${service}/public/**', public: true }`;
    case 3:
      return `{ methods: [DELETE], path: '${service}/items/{id}/tags/{tag}', scopes: [admin] }`;
    default:
      return `{ methods: [GET], path: '${service}/status/', public: true }`;
  }
}

/** A policy of `count` routes whose last one decides `GET /accounts/{id}/balance`. */
function policyText(count: number): string {
  return [
    'version: 1',
    'realm: bank-api',
    'issuers:',
    '  - issuer: https://bench.example/',
    '    audiences: [https://my-banking-api]',
    '    jwks_uri: https://bench.example/jwks.json',
    '    algorithms: [RS256]',
    'routes:',
    ...Array.from({ length: count - 1 }, (_, i) => `  - ${fillerRoute(i)}`),
    "  - { methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance] }",
    '',
  ].join('\n');
}

async function nsPerCall(call: () => Promise<unknown>, iterations: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await call();
  return Number(process.hrtime.bigint() - started) / iterations;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * P5, in this process: `authorize()` of the built CLI in `targetDir` (dist/) for `GET
 * /accounts/42/balance?x=1` without credentials, over policies whose last route is the one that matches.
 * The request is answered 401 before any token work, so the time is routing, deciding and answering.
 * Sizes are measured in alternating rounds (median of 7) so that drift on a noisy machine hits both alike.
 *
 * @throws Error when a policy does not decide the request with its last route
 */
export async function measureRouteScaling(
  targetDir: string,
  sizes: readonly number[],
): Promise<RouteScaling> {
  const load = <T>(file: string): Promise<T> =>
    import(pathToFileURL(path.join(targetDir, 'dist', file)).href) as Promise<T>;
  const { compilePolicy } = await load<typeof CompilePolicyModule>('policy/compile-policy.js');
  const { authorize } = await load<typeof AuthorizeModule>('authz/authorize.js');

  const request = {
    method: 'GET',
    target: '/accounts/42/balance?x=1',
    credentials: { kind: 'none' },
  } as const;
  const verifier = {
    verify: (): never => {
      throw new Error('the bench request carries no token: nothing to verify');
    },
    prove: (): never => {
      throw new Error('the bench request carries no token: nothing to prove');
    },
  };
  const deciders = new Map(
    sizes.map((size) => {
      const policy = compilePolicy(policyText(size), `bench-${size}-routes.yaml`);
      return [size, () => authorize(policy, request, verifier, Date.now)] as const;
    }),
  );
  let slowest = 0;
  for (const [size, decide] of deciders) {
    const { route, answer } = await decide();
    if (route?.index !== size - 1 || answer.kind !== 'deny' || answer.status !== 401) {
      throw new Error(`the ${size}-route policy does not answer the request 401 with its last route`);
    }
    // Warm up for about half a second, doubling the batch (a linear scan of 10,000 routes takes
    // milliseconds per decision, a table lookup a microsecond); the last batch gives the speed.
    let batch = 10;
    let elapsedNs = 0;
    let nsPerDecision = 0;
    while (elapsedNs < 500e6) {
      nsPerDecision = await nsPerCall(decide, batch);
      elapsedNs += batch * nsPerDecision;
      batch *= 2;
    }
    slowest = Math.max(slowest, nsPerDecision);
  }

  // Iterations for about 100 ms per size and round, from the slowest size.
  const iterations = Math.max(10, Math.round(100e6 / slowest));
  const rounds = new Map(sizes.map((size) => [size, [] as number[]]));
  for (let round = 0; round < 7; round++) {
    for (const [size, decide] of deciders) rounds.get(size)!.push(await nsPerCall(decide, iterations));
  }
  return new Map(sizes.map((size) => [size, median(rounds.get(size)!)]));
}
