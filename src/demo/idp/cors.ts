import type { EmptyReply } from './reply.js';

const PREFLIGHT_MAX_AGE_SECONDS = 600; // 10 minutes

/**
 * Cross-origin access for the browser app (Fetch standard, CORS protocol) to discovery, the key set and the
 * token endpoint: only the origins the app's redirect URIs live on, never with credentials (the app sends
 * no cookies there, and the token endpoint needs none). Development only.
 */
export class CorsPolicy {
  private readonly origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.origins = new Set(origins);
  }

  /**
   * Headers for an actual request: `Access-Control-Allow-Origin` echoing an allowed `Origin`, and always
   * `Vary: Origin` so a cache never serves one origin's answer to another.
   */
  headersFor(origin: string | undefined): Record<string, string> {
    return this.allows(origin)
      ? { 'access-control-allow-origin': origin, vary: 'Origin' }
      : { vary: 'Origin' };
  }

  /** The answer to an `OPTIONS` preflight for a route served with `method`: 204 when allowed, else 403. */
  preflight(origin: string | undefined, method: string): EmptyReply {
    if (!this.allows(origin)) return { kind: 'empty', status: 403, headers: { vary: 'Origin' } };
    return {
      kind: 'empty',
      status: 204,
      headers: {
        ...this.headersFor(origin),
        'access-control-allow-methods': method,
        // DPoP is not a CORS-safelisted header: the app's token requests carry a proof (RFC 9449 section 5).
        'access-control-allow-headers': 'content-type, dpop',
        'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
      },
    };
  }

  private allows(origin: string | undefined): origin is string {
    return origin !== undefined && this.origins.has(origin);
  }
}
