import type { Credentials } from './credentials.js';

/** The facts about one HTTP request that authorisation looks at. */
export interface RequestFacts<Presented> {
  readonly method: string;
  /** The request target as received (origin-form, may include a query string). */
  readonly target: string;
  /** The host the request is for (`:authority` / `Host`) as received, or undefined when there is none. */
  readonly host?: string | undefined;
  /**
   * The service the proxy names for this request (ext_authz `context_extensions`: `service`), which takes
   * precedence over the host; undefined when it names none.
   */
  readonly serviceName?: string | undefined;
  readonly credentials: Credentials<Presented>;
  /**
   * Every value the request carried for the `DPoP` header (RFC 9449 section 4.1), as received; opaque to the
   * core, which hands them to the verifier's `prove()`. Absent or empty: none.
   */
  readonly dpopProofs?: readonly string[] | undefined;
  /**
   * The client certificate the proxy saw on the connection (Envoy: URL-encoded PEM), opaque to the core, for
   * the verifier's `prove()`; undefined without one. Never taken from a request header.
   */
  readonly clientCertificate?: string | undefined;
}
