import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { DpopKey } from './dpop-proofs.js';
import { codeAt, CookieJar, exchangeCode, pkcePair } from './oauth-client.js';

/**
 * panva's `oidc-provider` 9 (an OpenID Certified provider library), configured for the bank as its
 * documentation shows (issue 24): JWT access tokens for the bank's API by resource indicator (RFC 8707),
 * DPoP (RFC 9449), PKCE, and `extraTokenClaims` copying the login's `acr`, `amr` and `auth_time` into the
 * access token, which RFC 9068 leaves optional and the library leaves out. The login itself is this kit's:
 * no HTML form, an interaction finished in code (`provider.interactionFinished`) as a password login, or a
 * password and one-time-code login when the request asks `acr_values=urn:bank:mfa` (the step-up).
 */

/** The bank's API: the resource indicator and the access tokens' `aud`. */
export const BANK_RESOURCE = 'https://my-banking-api';
export const PASSWORD_ACR = 'urn:bank:pwd';
export const MFA_ACR = 'urn:bank:mfa';
const CLIENT_ID = 'bank-cli';
const REDIRECT_URI = 'http://127.0.0.1/callback';
const BANK_SCOPES = 'view:balance transfer:funds';

export interface StartedOidcProvider {
  /** `http://127.0.0.1:PORT`, its issuer and discovery base. */
  readonly issuer: string;
  /** The signing key's id, as the key set and the tokens' headers name it; a rotation changes it. */
  readonly kid: string;
  /**
   * Rotates the signing key: a new key signs from now on, the old one stays in the key set (as a provider
   * keeps publishing the previous key while its tokens live). Logins and grants in flight are dropped.
   */
  rotate(): Promise<void>;
  /**
   * An access token for `user`, from a full authorization code flow (PKCE; DPoP-bound when `dpop` is
   * given): a password login, or a second factor too when `acrValues` asks `urn:bank:mfa`. Each flow logs
   * in afresh (`prompt=login consent`), unless `session` is given: a browser's cookies kept between flows,
   * so that the provider may answer from the login it already has (single sign-on).
   */
  token(options: TokenFlow): Promise<string>;
  close(): Promise<void>;
}

export interface TokenFlow {
  readonly user: string;
  readonly acrValues?: string;
  readonly dpop?: DpopKey;
  readonly session?: BrowserSession;
}

/** A browser's cookies at the provider, kept across authorization flows. */
export interface BrowserSession {
  readonly jar: CookieJar;
}

export function newBrowserSession(): BrowserSession {
  return { jar: new CookieJar() };
}

export interface OidcProviderOptions {
  /**
   * Copy the login's `acr`, `amr` and `auth_time` into access tokens (`extraTokenClaims`, default true).
   * false is the library's default: its access tokens then say nothing of the login.
   */
  readonly copyLoginClaims?: boolean;
  /**
   * Log in again when a request's `acr_values` names none of the login's `acr` (default true). false is the
   * library's default: it treats `acr_values` as voluntary (it enforces only an essential `acr` of the
   * `claims` parameter), so with a session a step-up request gets the same login back.
   */
  readonly stepUpLogin?: boolean;
}

export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<StartedOidcProvider> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const settings = {
    copyLoginClaims: options.copyLoginClaims !== false,
    stepUpLogin: options.stepUpLogin !== false,
  };
  let keys = [await signingKey()];
  let provider = configuredProvider(issuer, keys, settings);
  let callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url?.startsWith('/interaction/') === true) {
      interaction(provider, req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    void callback(req, res);
  });

  return {
    issuer,
    get kid() {
      return String(keys[0]!['kid']);
    },
    rotate: async () => {
      keys = [await signingKey(), keys[0]!];
      provider = configuredProvider(issuer, keys, settings);
      callback = provider.callback();
    },
    token: (flow) => authorizationCodeFlow(issuer, flow),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function signingKey(): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = `oidc-provider-${randomBytes(4).toString('hex')}`;
  return { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
}

/** The provider for the bank; the first of `keys` signs. */
function configuredProvider(
  issuer: string,
  keys: readonly Record<string, unknown>[],
  settings: { readonly copyLoginClaims: boolean; readonly stepUpLogin: boolean },
): Provider {
  const { copyLoginClaims, stepUpLogin } = settings;
  const policy = interactionPolicy.base();
  if (stepUpLogin) {
    // The step-up interaction: a login whose acr the request's acr_values does not name is done again.
    policy.get('login')!.checks.add(
      new interactionPolicy.Check('acr_values_not_met', 'the login is weaker than acr_values asks', (ctx) => {
        const requested = String(ctx.oidc.params?.['acr_values'] ?? '')
          .split(' ')
          .filter(Boolean);
        return requested.length > 0 && !requested.includes(String(ctx.oidc.session?.acr ?? ''))
          ? interactionPolicy.Check.REQUEST_PROMPT
          : interactionPolicy.Check.NO_NEED_TO_PROMPT;
      }),
    );
  }
  return new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: 'ES256',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [...keys] as never[] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    acrValues: [PASSWORD_ACR, MFA_ACR],
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => BANK_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: BANK_SCOPES,
          audience: BANK_RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    // RFC 9068 makes acr, amr and auth_time optional, and the library leaves them out of access tokens:
    // copied from the login that the authorization code carries.
    extraTokenClaims: (ctx: KoaContextWithOIDC) => {
      const code = ctx.oidc.entities.AuthorizationCode;
      if (!copyLoginClaims || code === undefined) return undefined;
      return { acr: code.acr, amr: code.amr, auth_time: code.authTime };
    },
    interactions: { policy, url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
}

/** The login and consent pages, in code: a password login, or one with a second factor when asked. */
async function interaction(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { prompt, params, session } = await provider.interactionDetails(req, res);
  if (prompt.name === 'login') {
    const mfa = String(params['acr_values'] ?? '')
      .split(' ')
      .includes(MFA_ACR);
    const login = {
      accountId: String(params['login_hint'] ?? 'alice'),
      acr: mfa ? MFA_ACR : PASSWORD_ACR,
      amr: mfa ? ['pwd', 'otp', 'mfa'] : ['pwd'],
      remember: false,
    };
    await provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = new provider.Grant({ accountId: session!.accountId, clientId: CLIENT_ID });
  grant.addOIDCScope('openid');
  grant.addResourceScope(BANK_RESOURCE, BANK_SCOPES);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

/** The client's side of the flow: the authorization request, redirects with cookies, the token request. */
async function authorizationCodeFlow(issuer: string, options: TokenFlow): Promise<string> {
  const { verifier, challenge } = pkcePair();
  const authorize = new URL(`${issuer}/auth`);
  authorize.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: `openid ${BANK_SCOPES}`,
    resource: BANK_RESOURCE,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    login_hint: options.user,
    ...(options.session === undefined ? { prompt: 'login consent' } : {}),
    ...(options.acrValues === undefined ? {} : { acr_values: options.acrValues }),
  }).toString();
  const jar = options.session?.jar ?? new CookieJar();
  let next = authorize.toString();
  let code: string | undefined;
  for (let hop = 0; hop < 12 && code === undefined; hop += 1) {
    const response = await jar.fetch(next);
    const location = response.headers.get('location');
    if (location === null)
      throw new Error(`oidc-provider answered ${response.status}: ${await response.text()}`);
    const url = new URL(location, next);
    code = codeAt(url, REDIRECT_URI);
    next = url.toString();
  }
  if (code === undefined) throw new Error('the authorization flow did not end at the redirect URI');
  return exchangeCode(`${issuer}/token`, {
    code,
    verifier,
    redirectUri: REDIRECT_URI,
    clientId: CLIENT_ID,
    ...(options.dpop === undefined ? {} : { dpop: options.dpop }),
    params: { resource: BANK_RESOURCE },
  });
}
