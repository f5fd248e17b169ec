import { describe, expect, it } from 'vitest';
import type { CompiledService } from '../../../src/policy/compiled-policy.js';
import { matchRoute } from '../../../src/policy/match-route.js';
import { compileService } from '../../kit/inline-policy.js';

/** The index of the route that decides, or null when none matches. */
function decidingRoute(service: CompiledService, method: string, path: string): number | null {
  return matchRoute(service, method, path)?.index ?? null;
}

describe('matchRoute', () => {
  const service = compileService(
    '{ methods: [GET], path: /balance, scopes: [view:balance] }', // 0
    '{ methods: [POST], path: /transfer, scopes: [transfer:funds] }', // 1
    '{ path: /healthz, public: true }', // 2
    "{ methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance] }", // 3
    "{ methods: [DELETE], path: '/accounts/{id}/balance', scopes: [admin] }", // 4
    "{ methods: [GET, PUT], path: '/files/**', scopes: [files] }", // 5
  );

  it.each([
    ['GET', '/balance', 0],
    ['POST', '/transfer', 1],
    ['GET', '/healthz', 2],
    ['POST', '/healthz', 2],
    ['OPTIONS', '/healthz', 2],
    ['BREW', '/healthz', 2],
    ['GET', '/accounts/1/balance', 3],
    ['DELETE', '/accounts/1/balance', 4],
    ['PUT', '/files', 5],
    ['GET', '/files/a/b', 5],
  ])('%s %s is decided by route %i', (method, path, index) => {
    expect(decidingRoute(service, method, path)).toBe(index);
  });

  it.each([
    ['HEAD', '/balance', 'HEAD is not GET'],
    ['get', '/balance', 'methods are case-sensitive'],
    ['Get', '/balance', 'methods are case-sensitive'],
    ['POST', '/balance', 'the method is not listed'],
    ['GET', '/transfer', 'the method is not listed'],
    ['GET', '/balance/', 'the trailing slash is significant'],
    ['GET', '/Balance', 'paths are case-sensitive'],
    ['PATCH', '/accounts/1/balance', 'neither route lists PATCH'],
    ['DELETE', '/files/a', 'the rest route lists GET and PUT only'],
    ['GET', '/unknown', 'no pattern matches'],
  ])('%s %s matches no route: %s', (method, path) => {
    expect(matchRoute(service, method, path)).toBeUndefined();
  });

  it('tries routes in file order: the first match wins over a later, more specific one', () => {
    const broadFirst = compileService(
      "{ path: '/accounts/**', scopes: [accounts] }",
      "{ methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance] }",
    );
    const specificFirst = compileService(
      "{ methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance] }",
      "{ path: '/accounts/**', scopes: [accounts] }",
    );

    expect(matchRoute(broadFirst, 'GET', '/accounts/1/balance')?.access).toEqual({
      kind: 'protected',
      scopes: ['accounts'],
    });
    expect(matchRoute(specificFirst, 'GET', '/accounts/1/balance')?.access).toEqual({
      kind: 'protected',
      scopes: ['view:balance'],
    });
    expect(decidingRoute(specificFirst, 'POST', '/accounts/1/balance')).toBe(1);
  });

  it('skips a route whose methods do not match and goes on to the next', () => {
    const split = compileService(
      '{ methods: [GET], path: /items, scopes: [read] }',
      '{ methods: [POST], path: /items, scopes: [write] }',
      '{ path: /items, public: true }',
    );

    expect(decidingRoute(split, 'GET', '/items')).toBe(0);
    expect(decidingRoute(split, 'POST', '/items')).toBe(1);
    expect(decidingRoute(split, 'HEAD', '/items')).toBe(2);
  });

  it('finds nothing in a policy with no routes', () => {
    expect(matchRoute(compileService(), 'GET', '/')).toBeUndefined();
  });
});
