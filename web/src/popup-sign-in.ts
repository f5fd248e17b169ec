import type { StepUpRequest } from '../../src/client/index.js';
import type { AppConfig } from './app-config.js';
import { authorizationUrl, codeFromResponse, type AuthorizationResponse } from './authorization-request.js';
import { AUTHORIZATION_RESPONSE_MESSAGE } from './callback-message.js';
import type { DpopFetch } from './dpop-fetch.js';
import { jsonBody } from './json-body.js';
import { codeChallengeS256, createCodeVerifier, createState } from './pkce.js';
import type { ProviderEndpoints } from './provider-metadata.js';
import { SignInError } from './sign-in-error.js';
import { readTokenResponse, type TokenGrant } from './token-response.js';

const SIGN_IN_TIMEOUT_MS = 10 * 60_000; // 10 minutes: long enough to find a phone, short enough to end
const TOKEN_TIMEOUT_MS = 10_000; // 10 seconds
const MAX_TOKEN_RESPONSE_CHARS = 64 * 1024; // a token response is a few KiB

/**
 * Signs in through the authorization code flow with PKCE (RFC 6749 section 4.1, RFC 7636) in a pop-up
 * window, so this page, and the tokens and pending operation in its memory, stay as they are. The
 * callback page (same origin) relays the answer with postMessage; the verifier never leaves this page.
 * The code is exchanged with a DPoP proof from `dpop`, so the token is bound to this browser's key.
 */
export function popupSignIn(
  config: AppConfig,
  endpoints: ProviderEndpoints,
  redirectUri: string,
  dpop: DpopFetch,
): (want: StepUpRequest & { readonly scope: string }) => Promise<TokenGrant> {
  return (want) => {
    // Opened synchronously, inside the click that called us: a window opened after an await is blocked.
    const popup = window.open('about:blank', 'bank-sign-in', 'popup=yes,width=520,height=760');
    if (popup === null) {
      return Promise.reject(
        new SignInError(
          'popup_blocked',
          'The browser blocked the sign-in window: allow pop-ups for this page.',
        ),
      );
    }
    return signInWith(popup, config, endpoints, redirectUri, dpop, want).finally(() => {
      if (!popup.closed) popup.close();
    });
  };
}

async function signInWith(
  popup: Window,
  config: AppConfig,
  endpoints: ProviderEndpoints,
  redirectUri: string,
  dpop: DpopFetch,
  want: StepUpRequest & { readonly scope: string },
): Promise<TokenGrant> {
  const verifier = createCodeVerifier();
  const state = createState();
  const url = authorizationUrl(endpoints.authorizationEndpoint, {
    clientId: config.clientId,
    redirectUri,
    audience: config.audience,
    state,
    codeChallenge: await codeChallengeS256(verifier),
    want,
  });
  const answered = callbackFrom(popup);
  popup.location.href = url.href;
  const code = codeFromResponse(await answered, {
    state,
    issuer: endpoints.issuer,
    issRequired: endpoints.issParameter,
  });
  // The token request carries a proof (no ath: there is no token yet), so the provider binds the token
  // to this page's key (RFC 9449 section 5); a nonce it asks for is sent on a second try (section 8).
  const response = await dpop
    .fetch({
      method: 'POST',
      url: endpoints.tokenEndpoint,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      init: () => ({
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          client_id: config.clientId,
          code_verifier: verifier,
        }),
        credentials: 'omit',
        redirect: 'error',
        cache: 'no-store',
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
      }),
    })
    .catch(() => {
      throw new SignInError(
        'token_error',
        'The identity provider could not be reached to finish signing in.',
      );
    });
  const json = await jsonBody(response, MAX_TOKEN_RESPONSE_CHARS);
  return readTokenResponse(response.status, json, want.scope, Date.now());
}

/** The authorization response the callback page in `popup` posts back; rejects if the window closes first. */
function callbackFrom(popup: Window): Promise<AuthorizationResponse> {
  return new Promise((resolve, reject) => {
    const finish = () => {
      window.removeEventListener('message', onMessage);
      clearInterval(closedCheck);
      clearTimeout(timeout);
    };
    const onMessage = (event: MessageEvent) => {
      // Only our own callback page, in the window we opened, may answer.
      if (event.origin !== window.location.origin || event.source !== popup) return;
      const data = event.data as { type?: unknown; response?: unknown } | null;
      if (data === null || typeof data !== 'object' || data.type !== AUTHORIZATION_RESPONSE_MESSAGE) return;
      finish();
      resolve(stringFields(data.response));
    };
    const closedCheck = setInterval(() => {
      if (!popup.closed) return;
      finish();
      reject(new SignInError('popup_closed', 'The sign-in window was closed before signing in finished.'));
    }, 500);
    const timeout = setTimeout(() => {
      finish();
      reject(new SignInError('timed_out', 'Signing in took too long; start again.'));
    }, SIGN_IN_TIMEOUT_MS);
    window.addEventListener('message', onMessage);
  });
}

function stringFields(value: unknown): AuthorizationResponse {
  const record = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const response: Record<string, string> = {};
  for (const [name, field] of Object.entries(record)) if (typeof field === 'string') response[name] = field;
  return response;
}
