import { resolve } from 'node:path';
import type { IssuerPolicy, KeySource, TokenCachePolicy } from './compiled-policy.js';
import { formatDuration, parseDurationMilliseconds, parseDurationSeconds } from './duration.js';
import { fetchableUrlProblem } from './fetchable-url.js';
import { POLICY_DEFAULTS } from './policy-defaults.js';
import type { PathSegment, PolicyDocument } from './policy-document.js';
import type { Report } from './problem-locator.js';

export function compileIssuer(
  entry: PolicyDocument['issuers'][number],
  at: PathSegment[],
  baseDir: string,
  headerClaims: readonly string[],
  maxRsaKeyBits: number,
  report: Report,
): IssuerPolicy | undefined {
  let keys: KeySource | undefined;
  if (entry.jwks_uri !== undefined) {
    const problem = fetchableUrlProblem(entry.jwks_uri);
    if (problem === undefined) keys = { kind: 'uri', uri: new URL(entry.jwks_uri) };
    else report([...at, 'jwks_uri'], problem);
  } else if (entry.jwks_file !== undefined) {
    keys = { kind: 'file', path: resolve(baseDir, entry.jwks_file) };
  } else if (entry.openid_configuration !== undefined) {
    const problem = fetchableUrlProblem(entry.openid_configuration);
    if (problem === undefined) {
      keys = { kind: 'discovery', metadataUrl: new URL(entry.openid_configuration), issuer: entry.issuer };
    } else {
      report([...at, 'openid_configuration'], problem);
    }
  } else if (entry.discovery === true) {
    // OpenID Connect Discovery 1.0 section 4: the issuer, less a trailing slash, + /.well-known/openid-configuration.
    const url = `${entry.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    // An issuer identifier has no query or fragment (OIDC Discovery 1.0 section 2, RFC 8414 section 2).
    const problem = /[?#]/.test(entry.issuer)
      ? 'an issuer has no query or fragment'
      : fetchableUrlProblem(url);
    if (problem === undefined) keys = { kind: 'discovery', metadataUrl: new URL(url), issuer: entry.issuer };
    else
      report([...at, 'discovery'], `discovery needs the issuer to be a URL that can be fetched: ${problem}`);
  }
  const refused = new Set<string>(); // the settings refused below, by their key
  const duration = (
    key: PathSegment | PathSegment[],
    value: unknown,
    fallback: number,
    min: number,
    max: number,
    range = `from ${formatDuration(min)} to ${formatDuration(max)}`,
  ) => {
    if (value === undefined) return fallback;
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined || seconds < min || seconds > max) {
      const path = Array.isArray(key) ? key : [key];
      report([...at, ...path], `must be a duration ${range} (whole seconds, or 30s / 5m / 1h)`);
      refused.add(path.join('.'));
      return fallback;
    }
    return seconds;
  };
  const d = POLICY_DEFAULTS;
  // On by default; `max_entries: 0` turns it off (the schema bounds the count). The TTL is checked either way.
  const cacheTtlSeconds = duration(
    ['token_cache', 'ttl'],
    entry.token_cache?.ttl,
    d.tokenCacheTtlSeconds,
    d.minTokenCacheTtlSeconds,
    d.maxTokenCacheTtlSeconds,
  );
  const cacheEntries = entry.token_cache?.max_entries ?? d.tokenCacheMaxEntries;
  const jwksCacheTtlSeconds = duration(
    'jwks_cache_ttl',
    entry.jwks_cache_ttl,
    d.jwksCacheTtlSeconds,
    d.minJwksCacheTtlSeconds,
    d.maxJwksCacheTtlSeconds,
  );
  const jwksMaxStaleSeconds = duration(
    'jwks_max_stale',
    entry.jwks_max_stale,
    d.jwksMaxStaleSeconds,
    0,
    d.maxJwksMaxStaleSeconds,
    `of at most ${formatDuration(d.maxJwksMaxStaleSeconds)}, and at least jwks_cache_ttl`,
  );
  // Keys may not go stale before they would be refreshed: a bound below the TTL would drop fresh keys.
  // The default bound is never below the largest TTL; a refused setting has been reported already.
  if (
    jwksMaxStaleSeconds < jwksCacheTtlSeconds &&
    !refused.has('jwks_max_stale') &&
    !refused.has('jwks_cache_ttl')
  ) {
    report(
      [...at, 'jwks_max_stale'],
      `jwks_max_stale (${formatDuration(jwksMaxStaleSeconds)}) must be at least jwks_cache_ttl (${formatDuration(jwksCacheTtlSeconds)})`,
    );
  }
  let jwksFetchWaitMs: number = d.jwksFetchWaitMs;
  if (entry.jwks_fetch_wait !== undefined) {
    const ms = parseDurationMilliseconds(entry.jwks_fetch_wait);
    if (ms === undefined || ms > d.maxJwksFetchWaitMs) {
      report(
        [...at, 'jwks_fetch_wait'],
        `must be a duration from 0ms to ${formatDuration(d.maxJwksFetchWaitMs, true)} (800ms, whole seconds, or 1s)`,
      );
    } else {
      jwksFetchWaitMs = ms;
    }
  }
  const tokenCache: TokenCachePolicy | undefined =
    cacheEntries === 0 ? undefined : { maxEntries: cacheEntries, ttlSeconds: cacheTtlSeconds };
  const issuer: IssuerPolicy = {
    issuer: entry.issuer,
    audiences: Object.freeze([...entry.audiences]),
    algorithms: Object.freeze([...entry.algorithms]),
    keys: keys ?? { kind: 'file', path: '' },
    clockToleranceSeconds: duration(
      'clock_tolerance',
      entry.clock_tolerance,
      d.clockToleranceSeconds,
      0,
      d.maxClockToleranceSeconds,
    ),
    jwksCacheTtlSeconds,
    jwksRefreshCooldownSeconds: duration(
      'jwks_refresh_cooldown',
      entry.jwks_refresh_cooldown,
      d.jwksRefreshCooldownSeconds,
      d.minJwksRefreshCooldownSeconds,
      d.maxJwksRefreshCooldownSeconds,
    ),
    jwksMaxStaleSeconds,
    jwksFetchWaitMs,
    maxTokenLifetimeSeconds: duration(
      'max_token_lifetime',
      entry.max_token_lifetime,
      d.maxTokenLifetimeSeconds,
      d.minMaxTokenLifetimeSeconds,
      d.maxMaxTokenLifetimeSeconds,
    ),
    claims: Object.freeze({
      scopes: Object.freeze([...(entry.claims?.scopes ?? d.claims.scopes)]),
      acr: entry.claims?.acr ?? d.claims.acr,
      amr: entry.claims?.amr ?? d.claims.amr,
      authTime: entry.claims?.auth_time ?? d.claims.authTime,
    }),
    requiredTyp: entry.require_typ,
    requireSubject: entry.require_sub ?? true,
    maxRsaKeyBits,
    headerClaims: Object.freeze([...headerClaims]),
    tokenCache: tokenCache === undefined ? undefined : Object.freeze(tokenCache),
    senderConstraint: Object.freeze({ ...entry.sender_constraint }),
  };
  return keys === undefined ? undefined : Object.freeze(issuer);
}
