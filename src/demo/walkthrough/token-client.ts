import type { DpopKey } from '../../client/index.js';

/** What the identity provider's token endpoint answered. */
export type TokenResult =
  | {
      readonly kind: 'token';
      readonly accessToken: string;
      /** `DPoP` when the token is bound to the key of the request's proof (RFC 9449 section 5), else `Bearer`. */
      readonly tokenType: string;
      readonly scope: string | undefined;
    }
  /** A second factor is needed first (Auth0's MFA API shape: `error: mfa_required` with an `mfa_token`). */
  | { readonly kind: 'mfa_required'; readonly mfaToken: string; readonly description: string }
  | {
      readonly kind: 'refused';
      readonly status: number;
      readonly error: string;
      readonly description: string;
    };

/** The MFA one-time-password grant of Auth0's MFA API, which the demo identity provider speaks. */
export const MFA_OTP_GRANT = 'http://auth0.com/oauth/grant-type/mfa-otp';

const MAX_RESPONSE_BYTES = 64 * 1024; // a token response is a few KiB
const TIMEOUT_MS = 10_000; // 10 seconds

/**
 * Posts a token request (RFC 6749 section 4.3 / 3.2: form-encoded) and reads the answer into a typed
 * result. With `dpopKey` the request carries a fresh proof of that key (RFC 9449 section 5), so the token
 * comes back bound to it; a server that asks for a nonce (`use_dpop_nonce`, section 8) is asked once more
 * with it. Network faults and non-JSON answers throw.
 */
export async function requestToken(
  tokenEndpoint: URL,
  form: Readonly<Record<string, string>>,
  dpopKey?: DpopKey,
): Promise<TokenResult> {
  const post = async (nonce?: string) => {
    const proof =
      dpopKey === undefined
        ? undefined
        : await dpopKey.proof({
            method: 'POST',
            url: tokenEndpoint,
            ...(nonce === undefined ? {} : { nonce }),
          });
    return fetch(tokenEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...(proof === undefined ? {} : { dpop: proof }),
      },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
  };
  let response = await post();
  const nonce = response.headers.get('dpop-nonce');
  if (dpopKey !== undefined && response.status === 400 && nonce !== null) {
    const body = await response
      .clone()
      .json()
      .catch(() => undefined);
    if ((body as { error?: unknown } | undefined)?.error === 'use_dpop_nonce') response = await post(nonce);
  }
  const text = await response.text();
  if (text.length > MAX_RESPONSE_BYTES)
    throw new Error(`the token endpoint sent more than ${MAX_RESPONSE_BYTES} bytes`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`the token endpoint answered ${response.status} with something that is not JSON`);
  }
  const description = typeof body['error_description'] === 'string' ? body['error_description'] : '';
  if (response.ok && typeof body['access_token'] === 'string') {
    return {
      kind: 'token',
      accessToken: body['access_token'],
      tokenType: typeof body['token_type'] === 'string' ? body['token_type'] : 'Bearer',
      scope: typeof body['scope'] === 'string' ? body['scope'] : undefined,
    };
  }
  if (body['error'] === 'mfa_required' && typeof body['mfa_token'] === 'string') {
    return { kind: 'mfa_required', mfaToken: body['mfa_token'], description };
  }
  return {
    kind: 'refused',
    status: response.status,
    error: typeof body['error'] === 'string' ? body['error'] : 'unknown_error',
    description,
  };
}

/** Finds the token endpoint through OpenID Connect discovery (the metadata's issuer must match). */
export async function discoverTokenEndpoint(issuer: string): Promise<URL> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const metadata = (await response.json()) as { issuer?: unknown; token_endpoint?: unknown };
  if (metadata.issuer !== issuer) throw new Error(`${url} names another issuer (${String(metadata.issuer)})`);
  if (typeof metadata.token_endpoint !== 'string') throw new Error(`${url} has no token_endpoint`);
  return new URL(metadata.token_endpoint);
}
