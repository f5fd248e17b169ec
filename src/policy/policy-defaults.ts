/** Defaults and bounds for optional policy settings, in one place. */
export const POLICY_DEFAULTS = Object.freeze({
  maxTokenBytes: 8192, // bytes
  clockToleranceSeconds: 30, // 30 seconds
  maxClockToleranceSeconds: 300, // 5 minutes
  jwksCacheTtlSeconds: 300, // 5 minutes
  minJwksCacheTtlSeconds: 10, // 10 seconds
  maxJwksCacheTtlSeconds: 86_400, // 24 hours
  jwksRefreshCooldownSeconds: 30, // 30 seconds
  minJwksRefreshCooldownSeconds: 1, // 1 second
  maxJwksRefreshCooldownSeconds: 3600, // 1 hour
  jwksMaxStaleSeconds: 86_400, // 24 hours; at least the issuer's jwks_cache_ttl
  maxJwksMaxStaleSeconds: 2_592_000, // 30 days
  jwksFetchWaitMs: 500, // 500 milliseconds, under Envoy's 1 s ext_authz timeout (envoy/envoy.yaml)
  maxJwksFetchWaitMs: 10_000, // 10 seconds
  maxTokenLifetimeSeconds: 86_400, // 24 hours
  minMaxTokenLifetimeSeconds: 60, // 1 minute
  maxMaxTokenLifetimeSeconds: 31_536_000, // 365 days
  tokenCacheMaxEntries: 10_000, // tokens per issuer
  tokenCacheTtlSeconds: 300, // 5 minutes
  minTokenCacheTtlSeconds: 1, // 1 second
  maxTokenCacheTtlSeconds: 3600, // 1 hour
  maxAgeLimitSeconds: 31_536_000, // 1 year, the largest max_age a route may set
  // DPoP proofs (RFC 9449 section 4.3; docs/sender-constraints.md). Asymmetric algorithms only, in the
  // order the DPoP challenge's algs parameter names them (section 7.1).
  dpopAlgorithms: Object.freeze([
    'ES256',
    'ES384',
    'ES512',
    'PS256',
    'PS384',
    'PS512',
    'RS256',
    'RS384',
    'RS512',
    'EdDSA',
    'Ed25519', // RFC 9864: the fully specified name certified clients sign with
  ]),
  dpopMaxAgeSeconds: 60, // 1 minute
  minDpopMaxAgeSeconds: 1, // 1 second
  maxDpopMaxAgeSeconds: 600, // 10 minutes
  dpopClockToleranceSeconds: 10, // 10 seconds, FAPI 2.0's clock-offset allowance
  maxDpopClockToleranceSeconds: 60, // 1 minute
  dpopNonceLifetimeSeconds: 60, // 1 minute
  minDpopNonceLifetimeSeconds: 10, // 10 seconds
  maxDpopNonceLifetimeSeconds: 600, // 10 minutes
  dpopReplayCacheSize: 100_000, // proof jti values per process (the schema bounds it: 1000 to 10,000,000)
  // The share one proof key, and one user's keys together, may hold of it by default: one client flooding
  // with valid proofs is refused (429) long before everyone else's proofs could be.
  dpopReplayShareOfKey: 0.02, // 2%: 2000 of 100,000, some 28 proofs a second for a 70 s window
  dpopReplayShareOfSubject: 0.05, // 5%
  dpopReplayStoreKeyPrefix: 'authz:dpop:',
  dpopReplayStoreTimeoutMs: 200, // a Redis on the same network answers in about a millisecond
  minDpopReplayStoreTimeoutMs: 10,
  maxDpopReplayStoreTimeoutMs: 900, // below Envoy's 1 s ext_authz timeout (envoy/envoy.yaml)
  maxRsaKeyBits: 4096, // bits (2048 to 8192; RSA_KEY_LIMITS)
  claims: Object.freeze({
    scopes: Object.freeze(['scope', 'scp']),
    acr: 'acr',
    amr: 'amr',
    authTime: 'auth_time',
  }),
});
