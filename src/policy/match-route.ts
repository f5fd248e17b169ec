import type { CompiledPolicy, CompiledRoute } from './compiled-policy.js';

/**
 * The first route, in file order, whose methods and path pattern match, found through the route table
 * the compiler built. The path must already be stripped of its query string and checked by
 * `normalisedRequestPath`.
 */
export function matchRoute(policy: CompiledPolicy, method: string, path: string): CompiledRoute | undefined {
  return policy.routeTable.match(method, path);
}
