/** Where an issuer's signing keys come from. Header parameters such as `jku`, `x5u` or `jwk` never are. */
export type KeySource =
  { readonly kind: 'uri'; readonly uri: URL } | { readonly kind: 'file'; readonly path: string };

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
}

/** What a route demands of a request. */
export type RouteAccess =
  | { readonly kind: 'public' }
  /** A valid token with every one of `scopes` (none listed: any valid token). */
  | { readonly kind: 'protected'; readonly scopes: readonly string[] };

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
  /** Whether a normalised request path (no query) matches the pattern. */
  readonly matchesPath: (path: string) => boolean;
  readonly access: RouteAccess;
}

/** A policy file, parsed, validated and compiled once so that deciding does no parsing. */
export interface CompiledPolicy {
  /** Content hash of the source text: which policy made a decision. */
  readonly version: string;
  /** The file it came from (as given). */
  readonly source: string;
  /** `realm` for every `WWW-Authenticate: Bearer` challenge. */
  readonly realm: string;
  /** Tokens longer than this are refused before any parsing, in bytes. */
  readonly maxTokenBytes: number;
  /** Trusted issuers by their exact `iss`. */
  readonly issuers: ReadonlyMap<string, IssuerPolicy>;
  /** Tried in order; the first match decides. */
  readonly routes: readonly CompiledRoute[];
}
