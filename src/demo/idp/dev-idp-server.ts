import { createServer, type IncomingMessage, type Server } from 'node:http';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { plainHttpUrl } from '../../http/plain-http-url.js';
import { listenHttp } from '../../http/listen-http.js';
import { AuthorizationCodes } from './authorization-codes.js';
import { AuthorizeEndpoint } from './authorize-endpoint.js';
import { CorsPolicy } from './cors.js';
import { DEMO_USERS } from './demo-users.js';
import { DevIdpError } from './dev-idp-error.js';
import {
  AUTHORIZATION_PATH,
  DISCOVERY_PATH,
  discoveryDocument,
  JWKS_PATH,
  LOGIN_PATH,
  MFA_PATH,
  TOKEN_PATH,
} from './discovery-document.js';
import { pageHeaders } from './html-page.js';
import { isLoopbackAddress } from './loopback.js';
import { LoginSessions } from './login-sessions.js';
import { MfaTransactions } from './mfa-transactions.js';
import { OAuthError } from './oauth-error.js';
import { DEFAULT_REDIRECT_URIS, SPA_CLIENT_ID } from './protocol-values.js';
import { redirectOrigins, redirectUriProblem } from './redirect-uris.js';
import { sendReply, type Reply } from './reply.js';
import { mediaTypeOf, parseJsonObject, readBody, readTokenParams } from './request-body.js';
import { SigningKeyRing } from './signing-keys.js';
import { TokenEndpoint } from './token-endpoint.js';

/**
 * The simulated authenticator app (the second factor, development only): `GET` with `?mfa_token=...`
 * answers the pending one-time code, to loopback peers only.
 */
export const AUTHENTICATOR_PATH = '/dev/authenticator';
/** `POST` (optional JSON `{"retire_previous": true}`) rotates the signing keys. Development only, loopback only. */
export const ROTATE_KEYS_PATH = '/dev/rotate-keys';

const MAX_TTL_SECONDS = 86_400; // 1 day: a development token should not outlive the session using it

/** Options of the development identity provider. Development only. */
export interface DevIdpOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /**
   * The `iss` of every token and the `issuer` of the discovery document, exactly. Default `http://HOST:PORT`
   * (no trailing slash; an IPv6 host in brackets), computed once the port is bound.
   */
  readonly issuer?: string;
  /** The one API audience tokens are issued for, e.g. `https://my-banking-api`. */
  readonly audience: string;
  readonly logger: Logger;
  /** Milliseconds since the epoch; default `Date.now`. */
  readonly now?: () => number;
  /** Access token lifetime; default 600 seconds. */
  readonly accessTokenTtlSeconds?: number;
  /**
   * Where the browser app (`client_id=bank-spa`) may receive authorization codes, compared by exact string;
   * absolute http(s) URLs without fragment or userinfo. Their origins are the ones CORS allows. Default
   * `DEFAULT_REDIRECT_URIS` (the app's callback on 127.0.0.1:8000 and localhost:8000).
   */
  readonly redirectUris?: readonly string[];
}

/** A running development identity provider. Development only. */
export interface RunningDevIdp {
  /** The port actually bound. */
  readonly port: number;
  readonly issuer: string;
  /**
   * Signs new tokens with a fresh key. The previous keys stay published so tokens they signed keep
   * verifying; `retirePrevious` unpublishes every key but the new one.
   */
  rotateKeys(options?: { retirePrevious?: boolean }): Promise<{ kid: string }>;
  close(): Promise<void>;
}

interface Route {
  readonly method: 'GET' | 'POST';
  /** Development helpers answer only peers on this machine. */
  readonly loopbackOnly: boolean;
  /** Readable by the browser app from its origins (CORS), with `OPTIONS` preflight answered. */
  readonly cors: boolean;
  readonly handle: (request: IncomingMessage, query: URLSearchParams) => Promise<Reply>;
}

/**
 * Starts a DEVELOPMENT-ONLY OAuth 2.0 / OIDC-flavoured identity provider for the step-up demo. It is not
 * an identity provider for anything real: the users and their passwords are public (see `DEMO_USERS`),
 * one-time codes are written to the log and readable over HTTP, and keys live in memory only.
 *
 * It behaves like the Auth0 tenant of the step-up scenario: `grant_type=password` gives `view:balance`
 * with `acr=urn:bank:pwd`; asking for `transfer:funds`, `acr_values=urn:bank:mfa` or any `max_age` is
 * answered 403 `mfa_required` with an `mfa_token`, and the mfa-otp grant with the logged code completes the
 * login (`acr=urn:bank:mfa`, `amr=["pwd","mfa"]`).
 *
 * The bank's browser app (public client `bank-spa`, registered `redirectUris`) logs in with the
 * authorization code flow and PKCE S256 (RFC 6749 section 4.1, RFC 7636, RFC 9207 `iss`): the same MFA rule
 * shows a second-factor page whose demo authenticator box prints the code. A password login leaves a session
 * cookie (`dev_idp_session`, one hour) so later sign-ins skip the password (single sign-on) unless
 * `prompt=login` or `max_age` asks for a fresh one; the second factor is asked for every time.
 *
 * - `GET /.well-known/openid-configuration`: discovery metadata (`x_development_only: true`)
 * - `GET /.well-known/jwks.json`: published public keys
 * - `GET /authorize`: the authorization endpoint; HTML sign-in pages, or a 303 back to the app
 * - `POST /authorize/login`, `POST /authorize/mfa`: the password and one-time code forms of those pages
 * - `POST /oauth/token`: password, `http://auth0.com/oauth/grant-type/mfa-otp` and `authorization_code` grants;
 *   with a `DPoP` proof header the token is bound to the proof's key (RFC 9449 section 5, `token_type: DPoP`)
 * - `GET /dev/authenticator?mfa_token=...` (loopback only): `{"otp": "123456"}`, the simulated second factor
 * - `POST /dev/rotate-keys` (loopback only): `{"kid", "published", "retired"}`
 *
 * Discovery, keys and the token endpoint answer CORS requests from the redirect URIs' origins.
 *
 * @throws DevIdpError `ERR_DEV_IDP_OPTIONS` for a malformed option; Error when the address cannot be bound.
 */
export async function startDevIdp(options: DevIdpOptions): Promise<RunningDevIdp> {
  checkOptions(options);
  const logger = options.logger.child({ component: 'dev-idp', development_only: true });
  const now = options.now ?? Date.now;
  const keys = await SigningKeyRing.create();
  const transactions = new MfaTransactions(now);
  const codes = new AuthorizationCodes(now);
  const redirectUris = [...(options.redirectUris ?? DEFAULT_REDIRECT_URIS)];
  const origins = redirectOrigins(redirectUris);
  const cors = new CorsPolicy(origins);

  const server: Server = createServer();
  server.requestTimeout = 10_000; // 10 seconds
  server.headersTimeout = 5_000; // 5 seconds
  const listening = await listenHttp(server, options.host, options.port);
  const port = listening.port;
  const issuer = options.issuer ?? defaultIssuer(options.host, port);

  const rotateKeys = async (rotation: { retirePrevious?: boolean } = {}): Promise<{ kid: string }> => {
    const { current, published, retired } = await keys.rotate(rotation);
    logger.info(
      { event: 'keys_rotated', kid: current.kid, published, retired },
      `signing key rotated to ${current.kid}, ${published.length} published (development only)`,
    );
    return { kid: current.kid };
  };
  const tokenEndpoint = new TokenEndpoint({
    issuer,
    audience: options.audience,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 600,
    keys,
    transactions,
    codes,
    logger,
    now,
  });
  const authorizeEndpoint = new AuthorizeEndpoint({
    issuer,
    audience: options.audience,
    redirectUris,
    pageHeaders: pageHeaders(origins),
    transactions,
    codes,
    sessions: new LoginSessions(now),
    logger,
    now,
  });

  const routes = new Map<string, Route>([
    [DISCOVERY_PATH, { ...get(async () => ({ status: 200, body: discoveryDocument(issuer) })), cors: true }],
    [JWKS_PATH, { ...get(async () => ({ status: 200, body: keys.jwks() })), cors: true }],
    [
      TOKEN_PATH,
      {
        method: 'POST',
        loopbackOnly: false,
        cors: true,
        // Every DPoP line as sent, not Node's comma-joined `headers.dpop`: two proofs are refused, not merged.
        handle: async (request) =>
          tokenEndpoint.handle(await readTokenParams(request), request.headersDistinct['dpop'] ?? []),
      },
    ],
    [AUTHORIZATION_PATH, get(async (request, query) => authorizeEndpoint.authorize(request, query))],
    [LOGIN_PATH, post(async (request) => authorizeEndpoint.login(request))],
    [MFA_PATH, post(async (request) => authorizeEndpoint.mfa(request))],
    [
      AUTHENTICATOR_PATH,
      {
        method: 'GET',
        loopbackOnly: true,
        cors: false,
        handle: async (_request, query) => {
          const mfaTokens = query.getAll('mfa_token');
          if (mfaTokens.length !== 1 || mfaTokens[0] === '')
            throw new OAuthError(400, 'invalid_request', 'mfa_token is required, once');
          const otp = transactions.codeFor(mfaTokens[0]);
          if (otp === undefined)
            throw new OAuthError(404, 'expired_token', 'no pending MFA transaction for this mfa_token');
          return { status: 200, body: { otp } };
        },
      },
    ],
    [
      ROTATE_KEYS_PATH,
      {
        method: 'POST',
        loopbackOnly: true,
        cors: false,
        handle: async (request) => {
          const { kid } = await rotateKeys(await readRotation(request));
          const published = keys.jwks().keys.map((key) => key.kid);
          return { status: 200, body: { kid, published } };
        },
      },
    ],
  ]);

  // Attached only now that the issuer is known; no request can arrive between bind and this line.
  server.on('request', (request: IncomingMessage, response) => {
    const { path, query } = splitTarget(request.url);
    const route = routes.get(path);
    // CORS headers go on errors too, so the browser app can read why its token request failed.
    const corsHeaders = route?.cors === true ? cors.headersFor(request.headers.origin) : {};
    answer(route, request, query, cors)
      .catch((error: unknown): Reply => {
        if (error instanceof OAuthError) return error.reply();
        logger.error({ event: 'dev_idp_error', err: error }, 'development identity provider request failed');
        return { status: 500, body: { error: 'server_error', error_description: 'internal error' } };
      })
      .then((reply) => {
        if (response.headersSent) response.destroy();
        else sendReply(response, reply, corsHeaders);
      })
      .catch(() => response.destroy());
  });

  logger.info(
    {
      event: 'started',
      host: options.host,
      port,
      issuer,
      audience: options.audience,
      users: [...DEMO_USERS.keys()],
      client_id: SPA_CLIENT_ID,
      redirect_uris: redirectUris,
    },
    `development identity provider listening, issuer ${issuer} (development only)`,
  );
  return {
    port,
    issuer,
    rotateKeys,
    close: listening.close,
  };
}

async function answer(
  route: Route | undefined,
  request: IncomingMessage,
  query: URLSearchParams,
  cors: CorsPolicy,
): Promise<Reply> {
  if (route === undefined) throw new OAuthError(404, 'not_found', 'no such endpoint');
  if (route.loopbackOnly && !isLoopbackAddress(request.socket.remoteAddress))
    throw new OAuthError(403, 'access_denied', 'development helpers answer loopback peers only');
  if (route.cors && request.method === 'OPTIONS') return cors.preflight(request.headers.origin, route.method);
  if (request.method !== route.method) {
    throw new OAuthError(405, 'method_not_allowed', `use ${route.method}`, { allow: route.method });
  }
  return route.handle(request, query);
}

/** The path and query of a request target (`/authorize?client_id=...`). */
function splitTarget(target = '/'): { path: string; query: URLSearchParams } {
  const queryAt = target.indexOf('?');
  if (queryAt === -1) return { path: target, query: new URLSearchParams() };
  return { path: target.slice(0, queryAt), query: new URLSearchParams(target.slice(queryAt + 1)) };
}

function get(handle: Route['handle']): Route {
  return { method: 'GET', loopbackOnly: false, cors: false, handle };
}

function post(handle: Route['handle']): Route {
  return { method: 'POST', loopbackOnly: false, cors: false, handle };
}

/** The body of `POST /dev/rotate-keys`: empty, or JSON `{"retire_previous": boolean}`. */
async function readRotation(request: IncomingMessage): Promise<{ retirePrevious: boolean }> {
  const text = await readBody(request);
  if (text.trim() === '') return { retirePrevious: false };
  if (mediaTypeOf(request) !== 'application/json')
    throw new OAuthError(415, 'invalid_request', 'send application/json');
  const { retire_previous: retirePrevious, ...rest } = parseJsonObject(text);
  if (Object.keys(rest).length > 0 || (retirePrevious !== undefined && typeof retirePrevious !== 'boolean'))
    throw new OAuthError(400, 'invalid_request', 'send {} or {"retire_previous": true}');
  return { retirePrevious: retirePrevious === true };
}

function defaultIssuer(host: string, port: number): string {
  return `http://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

function checkOptions(options: DevIdpOptions): void {
  const fail = (message: string): never => {
    throw new DevIdpError('ERR_DEV_IDP_OPTIONS', message);
  };
  if (typeof options.audience !== 'string' || options.audience === '')
    fail('audience must be a non-empty string');
  const ttl = options.accessTokenTtlSeconds;
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS))
    fail(`accessTokenTtlSeconds must be a whole number from 1 to ${MAX_TTL_SECONDS}`);
  if (options.issuer !== undefined) {
    const url = plainHttpUrl(options.issuer);
    // Endpoints are served at the root, so an issuer with a path would point verifiers at nothing.
    if (url === undefined || url.pathname !== '/' || url.search !== '')
      fail(`issuer must be an http(s) URL with no path, query or fragment, like http://127.0.0.1:9000`);
  }
  if (options.redirectUris !== undefined) {
    if (!Array.isArray(options.redirectUris) || options.redirectUris.length === 0)
      fail('redirectUris must list at least one URI');
    for (const uri of options.redirectUris) {
      const problem = typeof uri === 'string' ? redirectUriProblem(uri) : 'is not a string';
      if (problem !== undefined) fail(`redirectUris: "${String(uri)}" ${problem}`);
    }
  }
}
