import { describe, expect, it } from 'vitest';
import type { CompiledRoute, CompiledService } from '../../../src/policy/compiled-policy.js';
import { matchRoute } from '../../../src/policy/match-route.js';
import { compileService } from '../../kit/inline-policy.js';

/**
 * The specification the route table must meet, written the straightforward way: every route in file
 * order, its methods, then its own compiled pattern matcher. Kept here, not in src/, so that the table is
 * always checked against an independent statement of the rules.
 */
function referenceMatch(service: CompiledService, method: string, path: string): CompiledRoute | undefined {
  for (const route of service.routes) {
    if (route.methods !== null && !route.methods.has(method)) continue;
    if (route.matchesPath(path)) return route;
  }
  return undefined;
}

/** A small seeded generator (mulberry32), so that a failure is reproduced by its seed. */
function randomSource(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const below = (n: number): number => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[below(items.length)]!;
  return { next, below, pick };
}
type Random = ReturnType<typeof randomSource>;

// Few literals, so that patterns share prefixes, overlap and shadow one another, as they do in real files;
// some look like regular-expression syntax, to catch any pattern text taken as more than text.
const LITERALS = ['a', 'b', 'users', 'v1.0', 'a.b', '~x', '(a)', '$'];
const METHODS = ['GET', 'POST', 'PUT', 'HEAD'];

/** A random pattern; with a prefix, one under that first segment (a service of a large gateway). */
function randomPattern(random: Random, prefix?: string): string {
  if (prefix === undefined && random.below(12) === 0) return random.pick(['/', '/**']);
  const segments = Array.from({ length: 1 + random.below(4) }, () =>
    random.below(3) === 0 ? `{p${random.below(3)}}` : random.pick(LITERALS),
  );
  if (prefix !== undefined) segments.unshift(prefix);
  const ending = random.below(6);
  if (ending === 0) segments.push('**');
  else if (ending === 1) segments.push(''); // a trailing slash
  return `/${segments.join('/')}`;
}

function randomRoute(random: Random, prefix?: string): string {
  const methods =
    random.below(3) === 0
      ? ''
      : `methods: [${[...new Set(Array.from({ length: 1 + random.below(2) }, () => random.pick(METHODS)))].join(', ')}], `;
  return `{ ${methods}path: '${randomPattern(random, prefix)}', public: true }`;
}

/** A request path: often one a pattern of the service was written for, else made of the same pieces. */
function randomPath(random: Random, service: CompiledService): string {
  const route = service.routes.length > 0 && random.below(2) === 0 ? random.pick(service.routes) : undefined;
  const template = route?.pattern ?? randomPattern(random);
  const pieces = template
    .slice(1)
    .split('/')
    .flatMap((piece) => {
      if (piece === '**')
        return Array.from({ length: random.below(3) }, () => random.pick([...LITERALS, 'x', '']));
      if (piece.startsWith('{')) return [random.pick([...LITERALS, 'x', '42', ''])];
      return [random.below(10) === 0 ? random.pick([...LITERALS, 'A', 'x']) : piece];
    });
  if (random.below(8) === 0) pieces.push(''); // a trailing slash the pattern may not have
  if (random.below(10) === 0) pieces.pop();
  return `/${pieces.join('/')}`;
}

// Thousands of policies compiled and requests compared: more than the default timeout on a busy machine.
const PROPERTY_TIMEOUT = { timeout: 60_000 };

describe('the route table (matchRoute) against a scan of every route in file order', () => {
  it('picks the same route for random policies and requests', PROPERTY_TIMEOUT, () => {
    let compared = 0;
    let matched = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const random = randomSource(seed);
      const service = compileService(
        ...Array.from({ length: 1 + random.below(14) }, () => randomRoute(random)),
      );
      // The message says how to reproduce a difference: the seed, the request and the routes.
      const routes = service.routes.map((route) => route.name).join('; ');
      for (let i = 0; i < 60; i++) {
        const method = random.pick([...METHODS, 'DELETE', 'get']);
        const path = randomPath(random, service);
        const expected = referenceMatch(service, method, path);
        expect(matchRoute(service, method, path)?.index, `seed ${seed}: ${method} ${path} [${routes}]`).toBe(
          expected?.index,
        );
        compared++;
        if (expected !== undefined) matched++;
      }
    }
    // The generator must exercise both outcomes, or the comparison above proves little.
    expect(compared).toBe(24_000);
    expect(matched).toBeGreaterThan(compared / 4);
    expect(compared - matched).toBeGreaterThan(compared / 10);
  });

  it('picks the same route in a policy of 10,000 routes', PROPERTY_TIMEOUT, () => {
    const random = randomSource(10_000);
    // Services under 500 first segments, so that the deciding routes are spread over the whole file.
    const service = compileService(
      ...Array.from({ length: 10_000 }, () => randomRoute(random, `s${random.below(500)}`)),
    );
    const deciding = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const method = random.pick(METHODS);
      const path = randomPath(random, service);
      const expected = referenceMatch(service, method, path)?.index;
      expect(matchRoute(service, method, path)?.index, `${method} ${path}`).toBe(expected);
      if (expected !== undefined) deciding.add(expected);
    }
    expect(deciding.size).toBeGreaterThan(300);
    expect(Math.max(...deciding)).toBeGreaterThan(9000);
  });

  it.each([
    ['the empty path, which only "/**" matches', ''],
    ['a path that does not start with "/"', 'a/b'],
    ['the root', '/'],
    ['an empty segment, which no parameter matches', '/a//b'],
    ['only empty segments', '//'],
  ])('agrees on %s', (_case, path) => {
    const service = compileService(
      "{ path: '/a/{id}/b', public: true }",
      "{ path: '/a/**', public: true }",
      "{ path: '/{id}', public: true }",
      "{ path: '/', public: true }",
      "{ path: '/**', public: true }",
    );
    const reordered = compileService(
      "{ path: '/**', public: true }",
      "{ path: '/a/{id}/b', public: true }",
      "{ path: '/', public: true }",
    );
    for (const each of [service, reordered]) {
      expect(matchRoute(each, 'GET', path)).toBe(referenceMatch(each, 'GET', path));
    }
  });
});

describe('the route table: first match in file order', () => {
  it('prefers an earlier route for every method over a later one for the method', () => {
    const service = compileService(
      '{ path: /items, public: true }',
      '{ methods: [GET], path: /items, scopes: [read] }',
    );

    expect(matchRoute(service, 'GET', '/items')?.index).toBe(0);
  });

  it('prefers an earlier route for the method over a later one for every method', () => {
    const service = compileService(
      '{ methods: [GET], path: /items, scopes: [read] }',
      '{ path: /items, public: true }',
    );

    expect(matchRoute(service, 'GET', '/items')?.index).toBe(0);
    expect(matchRoute(service, 'POST', '/items')?.index).toBe(1);
  });

  it('prefers an earlier parameter or rest route over a later literal one, and the reverse', () => {
    const broadFirst = compileService(
      "{ path: '/users/**', public: true }",
      "{ path: '/users/{id}', public: true }",
      '{ path: /users/me, public: true }',
    );
    const literalFirst = compileService(
      '{ path: /users/me, public: true }',
      "{ path: '/users/{id}', public: true }",
      "{ path: '/users/**', public: true }",
    );

    expect(matchRoute(broadFirst, 'GET', '/users/me')?.index).toBe(0);
    expect(matchRoute(literalFirst, 'GET', '/users/me')?.index).toBe(0);
    expect(matchRoute(literalFirst, 'GET', '/users/7')?.index).toBe(1);
    expect(matchRoute(literalFirst, 'GET', '/users/7/x')?.index).toBe(2);
    expect(matchRoute(literalFirst, 'GET', '/users')?.index).toBe(2);
  });

  it('returns the compiled route itself, as listed in service.routes', () => {
    const service = compileService(
      "{ methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance] }",
    );

    expect(matchRoute(service, 'GET', '/accounts/1/balance')).toBe(service.routes[0]);
  });
});
