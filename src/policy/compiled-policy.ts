/** Where an issuer's signing keys come from. Header parameters such as `jku`, `x5u` or `jwk` never are. */
export type KeySource =
  | { readonly kind: 'uri'; readonly uri: URL }
  | { readonly kind: 'file'; readonly path: string }
  /** OpenID Connect discovery: the metadata names the key set; its `issuer` must equal ours exactly. */
  | { readonly kind: 'discovery'; readonly metadataUrl: URL; readonly issuer: string };

/** Which claims hold what; providers differ (docs/policy.md, "Claim shapes by provider"). */
export interface ClaimNames {
  /** Claims holding granted scopes (string or array); the scopes of all of them count. */
  readonly scopes: readonly string[];
  readonly acr: string;
  readonly amr: string;
  readonly authTime: string;
}

/** One trusted token issuer, validated and with defaults applied. */
export interface IssuerPolicy {
  /** Compared exactly with the token's `iss`. */
  readonly issuer: string;
  /** The token's `aud` (string or array) must contain one of these. */
  readonly audiences: readonly string[];
  /** JWS algorithms accepted for this issuer (asymmetric only). */
  readonly algorithms: readonly string[];
  readonly keys: KeySource;
  /** Leeway for `exp` and `nbf`, in seconds. */
  readonly clockToleranceSeconds: number;
  /** How long a fetched key set is used before it is fetched again, in seconds. */
  readonly jwksCacheTtlSeconds: number;
  /** The least time between two fetches of the key set (unknown `kid` refetches included), in seconds. */
  readonly jwksRefreshCooldownSeconds: number;
  /**
   * How long after the last successful fetch the cached keys may still be used while every refresh fails, in
   * seconds (`jwks_max_stale`; default 24 hours, at least `jwksCacheTtlSeconds`, at most 30 days). Past it
   * the keys are dropped and the issuer's tokens are answered 503 until a fetch succeeds.
   */
  readonly jwksMaxStaleSeconds: number;
  /**
   * The longest a request waits for a key-set fetch when no usable keys are held (start-up, or an unknown
   * `kid`), in milliseconds (`jwks_fetch_wait`; default 500, at most 10,000). Must stay below Envoy's
   * ext_authz timeout, or Envoy gives up first.
   */
  readonly jwksFetchWaitMs: number;
  /**
   * The longest token lifetime accepted, in seconds (`max_token_lifetime`; default 24 hours, 1 minute to
   * 365 days): `exp - iat`, or `exp - now` when the token has no `iat`. `clockToleranceSeconds` is added.
   */
  readonly maxTokenLifetimeSeconds: number;
  readonly claims: ClaimNames;
  /** The `typ` header every token must carry (e.g. `at+jwt`, RFC 9068), or undefined: not checked. */
  readonly requiredTyp: string | undefined;
  /** Whether its tokens must carry `sub` (RFC 9068 section 2.2; `require_sub`, default true). */
  readonly requireSubject: boolean;
  /** The largest RSA modulus accepted in its key set, in bits (the policy's `max_rsa_key_bits`). */
  readonly maxRsaKeyBits: number;
  /**
   * Claims read from its tokens for `claim_headers` (every name any service maps), so that a remembered
   * verification carries them too.
   */
  readonly headerClaims: readonly string[];
  /** How verified tokens of this issuer are remembered, or undefined: every token is verified in full. */
  readonly tokenCache: TokenCachePolicy | undefined;
  /** `sender_constraint` as the issuer entry sets it (members it leaves out are absent). */
  readonly senderConstraint: SenderConstraintSetting;
}

/**
 * How a route takes one kind of sender-constrained token (docs/sender-constraints.md): `off`, tokens bound
 * that way are refused; `allowed`, they pass with their proof and unbound tokens pass too; `required`, only
 * tokens bound that way (or, when both kinds are required, either way) pass.
 */
export type ConstraintSetting = 'off' | 'allowed' | 'required';

/** `sender_constraint` as written at one level (issuer, service, route); an absent member defers upward. */
export interface SenderConstraintSetting {
  /** DPoP-bound tokens (RFC 9449, `cnf.jkt`). */
  readonly dpop?: ConstraintSetting;
  /** Certificate-bound tokens (RFC 8705, `cnf["x5t#S256"]`). */
  readonly mtls?: ConstraintSetting;
}

/** The sender constraint in force for one route and one issuer: route over service over issuer, else `off`. */
export interface SenderConstraint {
  readonly dpop: ConstraintSetting;
  readonly mtls: ConstraintSetting;
}

/** How DPoP proofs are checked for a service (`dpop`, top level and per service; RFC 9449 section 4.3). */
export interface DpopProofPolicy {
  /** Asymmetric JWS algorithms accepted for proofs, in the order the `algs` challenge parameter names them. */
  readonly algorithms: readonly string[];
  /** A proof's `iat` may be at most this many seconds in the past. */
  readonly maxAgeSeconds: number;
  /** A proof's `iat` may be at most this many seconds in the future. */
  readonly clockToleranceSeconds: number;
  /** Whether every proof must carry a nonce this service issued (`DPoP-Nonce`, RFC 9449 section 8). */
  readonly nonce: 'off' | 'required';
  /** How long an issued nonce is accepted, in seconds. */
  readonly nonceLifetimeSeconds: number;
}

/** The authorization schemes a protected route accepts, for its challenges (RFC 9449 section 7.1). */
export interface AcceptedSchemes {
  /**
   * `Bearer`: unless DPoP is required for the tokens of every issuer the service trusts (where mTLS is
   * required too, a certificate-bound token is enough, and it is sent as Bearer: RFC 8705 section 3).
   */
  readonly bearer: boolean;
  /** `DPoP`: when DPoP is not `off` for the tokens of some issuer the service trusts. */
  readonly dpop: boolean;
}

/**
 * The verified-token cache of one issuer (`token_cache`): a token seen again is not verified again while
 * its entry lasts. `exp` and `nbf` are checked on every use all the same.
 */
export interface TokenCachePolicy {
  /** Tokens remembered at most; the least recently used is dropped to make room. At least 1. */
  readonly maxEntries: number;
  /** How long one verification is reused at most, in seconds, however long the token lives. */
  readonly ttlSeconds: number;
}

/** What a route requires of the login itself (RFC 9470), beyond the scopes. */
export interface AuthenticationRequirement {
  /** The token's `acr` must be one of these. */
  readonly acrValues?: readonly string[];
  /** The token's `amr` must contain all of these. */
  readonly amr?: readonly string[];
  /** At most this many seconds since `auth_time`. */
  readonly maxAgeSeconds?: number;
}

/** Whether denials are answered, or only logged while the request is allowed (to trial a rule). */
export type EnforcementMode = 'enforce' | 'report-only';

/** What a route demands of a request. */
export type RouteAccess =
  | { readonly kind: 'public' }
  /** A valid token with every one of `scopes` (none listed: any valid token), from a login as required. */
  | {
      readonly kind: 'protected';
      readonly scopes: readonly string[];
      readonly authentication?: AuthenticationRequirement;
    };

/** A route ready for the hot path: its pattern compiled, its requirements normalised. */
export interface CompiledRoute {
  /** 0-based position in the file; routes are tried in this order. */
  readonly index: number;
  /** 1-based line of the route in the policy file, for logs and explanations. */
  readonly line: number;
  /** Methods this route applies to (upper case, exact); null means every method. */
  readonly methods: ReadonlySet<string> | null;
  /** The path pattern as written in the file. */
  readonly pattern: string;
  /** A short stable name for logs and metrics, e.g. `GET /accounts/{id}/balance`. */
  readonly name: string;
  /** `report-only`: denials are logged as would_deny and the request is allowed. */
  readonly mode: EnforcementMode;
  /**
   * Whether a normalised request path (no query) matches this one pattern. Deciding finds routes through
   * `CompiledPolicy.routeTable` instead, which tries every route at once.
   */
  readonly matchesPath: (path: string) => boolean;
  readonly access: RouteAccess;
  /** `sender_constraint` as the route sets it (members it leaves out are absent). */
  readonly senderConstraint: SenderConstraintSetting;
  /**
   * The sender constraint in force on this route for the tokens of each issuer its service trusts, by exact
   * `iss`: each member from the route, else the service, else the issuer, else `off`. Built at load.
   */
  readonly senderConstraints: ReadonlyMap<string, SenderConstraint>;
  /** The schemes this route accepts, from `senderConstraints`; both false for a public route. */
  readonly schemes: AcceptedSchemes;
}

/**
 * Every route of a policy in one structure built at load (`route-table.ts`), so that finding the route for
 * a request costs about the same with 10 routes as with 10,000.
 */
export interface RouteTable {
  /**
   * The first route in file order whose methods and path pattern match, or undefined. The path must be
   * stripped of its query string and checked by `normalisedRequestPath` (visible ASCII only).
   */
  match(method: string, path: string): CompiledRoute | undefined;
}

/** A verified claim passed to the upstream in a request header (`claim_headers`). */
export interface ClaimHeader {
  /** The claim's name in the token payload. */
  readonly claim: string;
  /** The header's name, lower case. */
  readonly header: string;
}

/**
 * One API behind the proxy: the hosts it answers for, its realm, whom it trusts, and its routes. A file
 * without `services` compiles to one implicit service, `default`, for every host.
 */
export interface CompiledService {
  /** Unique in the policy; `default` for the implicit service. */
  readonly name: string;
  /** 1-based line of the service in the policy file (of `routes` for the implicit service). */
  readonly line: number;
  /** Where its routes are in the file: `['routes']`, or `['services', N, 'routes']`; a route's path adds its index. */
  readonly routesPath: readonly (string | number)[];
  /**
   * Host names it answers for, lower case: exact names, or `*.` and a suffix (one more label). Empty: only
   * requests that name it (ext_authz `context_extensions`); null: every host (the implicit service).
   */
  readonly hosts: readonly string[] | null;
  /** `realm` for every `WWW-Authenticate: Bearer` challenge of this service. */
  readonly realm: string;
  /** The default mode of its routes, and the mode for its requests no route matches. */
  readonly mode: EnforcementMode;
  /** Tried in order; the first match decides. */
  readonly routes: readonly CompiledRoute[];
  /** The same routes, indexed at load for the hot path. */
  readonly routeTable: RouteTable;
  /** The issuers whose tokens it accepts, by exact `iss`, each with the audiences it accepts. */
  readonly trust: ReadonlyMap<string, ReadonlySet<string>>;
  /** Verified claims passed to the upstream as request headers, in file order. */
  readonly claimHeaders: readonly ClaimHeader[];
  /**
   * The headers other services of the policy map claims to and this one does not: its answers remove them,
   * so that a client cannot forge another service's claim header into this service's upstream (under
   * Istio and Envoy Gateway no proxy filter removes them first).
   */
  readonly foreignClaimHeaders: readonly string[];
  /**
   * The origins clients reach this service at (`public_origin`), normalised: lower-case scheme and host, no
   * default port, no trailing slash, e.g. `https://bank.example`. A DPoP proof's `htu` must be one of them plus
   * the request path. Empty when not configured (then no route of the service may accept DPoP).
   */
  readonly publicOrigins: readonly string[];
  /** `sender_constraint` as the service (or, for the implicit service, the top level) sets it. */
  readonly senderConstraint: SenderConstraintSetting;
  /** How DPoP proofs are checked here: the service's `dpop` over the top level's over the defaults. */
  readonly dpop: DpopProofPolicy;
  /**
   * In a policy directory, the service file it comes from and that file's `owner`; `line` and `routesPath`
   * are then in that file. Absent for a single policy file.
   */
  readonly origin?: ServiceOrigin;
}

/** The service file of a policy directory a service comes from. */
export interface ServiceOrigin {
  /** The file's path (the directory joined with its name). */
  readonly file: string;
  readonly owner: string;
}

/** Which service a request is for: by the name Envoy gives, or by its host. */
export interface ServiceSelector {
  /** The service with this name, if any. */
  byName(name: string): CompiledService | undefined;
  /**
   * The service that claims a normalised host (lower case, no port, no trailing dot): an exact name first,
   * then `*.` + the host less its first label; else the implicit service, if the policy has one.
   */
  forHost(host: string | undefined): CompiledService | undefined;
}

/** A policy file, parsed, validated and compiled once so that deciding does no parsing. */
export interface CompiledPolicy {
  /** Content hash of the source text: which policy made a decision. */
  readonly version: string;
  /** The file it came from (as given). */
  readonly source: string;
  /** Tokens longer than this are refused before any parsing, in bytes. */
  readonly maxTokenBytes: number;
  /**
   * Trusted issuers by their exact `iss`. Their `audiences` are every audience any service accepts from
   * them; each service then checks its own (`CompiledService.trust`).
   */
  readonly issuers: ReadonlyMap<string, IssuerPolicy>;
  /** In file order; one, `default`, for a file without `services`. */
  readonly services: readonly CompiledService[];
  /** Whether the file lists `services` (false: one implicit service for every host). */
  readonly explicitServices: boolean;
  readonly serviceSelector: ServiceSelector;
  /**
   * The scopes the policy declares its identity providers grant (`known_scopes`), or undefined when it
   * declares none. Deciding never reads it; `authz check-policy` checks route scopes against it.
   */
  readonly knownScopes: readonly string[] | undefined;
  /**
   * What a hot reload does with error-level findings (`reload_guard`; default `error`): `error` refuses a
   * reload that brings an error-level finding not already in the policy in force (compared by code and
   * path, accepted findings aside), as it refuses an invalid file; `off` only logs findings.
   */
  readonly reloadGuard: ReloadGuard;
  /** The replay store's limits (top-level `dpop.replay_cache_size`, `_per_key`, `_per_subject`). */
  readonly dpopReplayLimits: ReplayLimits;
  /** Where accepted proofs' `jti` values are remembered (top-level `dpop.replay_store`). */
  readonly dpopReplayStore: ReplayStoreSettings;
  /** The largest RSA modulus accepted for DPoP proof keys, in bits (`max_rsa_key_bits`). */
  readonly maxRsaKeyBits: number;
  /**
   * For a policy directory: the services of refused service files that have no version in force, whose
   * requests are answered 503 `service_unavailable` rather than 403 `no_service` until a good version is
   * saved. Absent for a single policy file.
   */
  readonly unavailable?: UnavailableServices;
}

/** Hosts and service names of service files refused with no version in force (a policy directory). */
export interface UnavailableServices {
  /** Whether a request naming this service (ext_authz `context_extensions`) is for one of them. */
  hasName(name: string): boolean;
  /** Whether a normalised host is one they claim (exact, or one wildcard label), and no service serves it. */
  hasHost(host: string | undefined): boolean;
}

/** `reload_guard`: whether new error-level findings refuse a hot reload (docs/policy-checks.md). */
export type ReloadGuard = 'error' | 'off';

/**
 * `dpop.replay_store`: this process's memory, or one Redis shared by every worker and replica. The URL is
 * given, or read from `urlFile` (a mounted Secret, credentials included) when the store is set up.
 */
export type ReplayStoreSettings =
  | { readonly type: 'memory' }
  | {
      readonly type: 'redis';
      readonly url: { readonly given: string } | { readonly file: string };
      readonly caFile: string | undefined;
      readonly keyPrefix: string;
      readonly timeoutMs: number;
      /** `none`: refuse while Redis cannot be asked (503); `local`: check against this process's store. */
      readonly fallback: 'none' | 'local';
    };

/** How much of the DPoP replay store everyone, one proof key and one user may hold, in entries. */
export interface ReplayLimits {
  readonly total: number;
  readonly perKey: number;
  readonly perSubject: number;
}
