import type { CompiledPolicy, CompiledRoute } from './compiled-policy.js';

/**
 * The first route, in file order, whose methods and path pattern match. The path must already be
 * stripped of its query string and checked by `normalisedRequestPath`.
 */
export function matchRoute(policy: CompiledPolicy, method: string, path: string): CompiledRoute | undefined {
  for (const route of policy.routes) {
    if (route.methods !== null && !route.methods.has(method)) continue;
    if (route.matchesPath(path)) return route;
  }
  return undefined;
}
