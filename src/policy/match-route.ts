import type { CompiledRoute, CompiledService } from './compiled-policy.js';

/**
 * The first route of a service, in file order, whose methods and path pattern match, found through the
 * route table the compiler built. The path must already be stripped of its query string and checked by
 * `normalisedRequestPath`.
 */
export function matchRoute(
  service: CompiledService,
  method: string,
  path: string,
): CompiledRoute | undefined {
  return service.routeTable.match(method, path);
}
