import type { ApiAnswer, Operation } from './bank-session.js';
import type { DpopFetch } from './dpop-fetch.js';
import { jsonBody } from './json-body.js';
import type { TokenGrant } from './token-response.js';

const API_TIMEOUT_MS = 10_000; // 10 seconds
const MAX_BODY_CHARS = 64 * 1024; // the bank's answers are a few dozen bytes

/**
 * Calls the bank API on this origin, so every call crosses Envoy and the authz sidecar. A DPoP-bound token
 * goes as `Authorization: DPoP` with a fresh proof over this method, URL and token (RFC 9449 section 7.1);
 * a Bearer token as `Authorization: Bearer` (RFC 6750 section 2.1). Cookies are not sent: the API
 * authenticates tokens only (and the identity provider's cookie shares the host).
 *
 * @param base the page's URL, against which operation paths resolve: the proof's `htu` must be absolute.
 */
export function bankApi(
  dpop: DpopFetch,
  base: string,
  send: typeof fetch = (input, init) => fetch(input, init),
): (operation: Operation, token: TokenGrant | undefined) => Promise<ApiAnswer> {
  return async (operation, token) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (operation.body !== undefined) headers['content-type'] = 'application/json';
    const init = () => ({
      ...(operation.body === undefined ? {} : { body: JSON.stringify(operation.body) }),
      credentials: 'omit' as const,
      cache: 'no-store' as const,
      redirect: 'error' as const,
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const url = new URL(operation.path, base);
    let response: Response;
    if (token?.tokenType === 'DPoP') {
      headers['authorization'] = `DPoP ${token.accessToken}`;
      response = await dpop.fetch({
        method: operation.method,
        url,
        headers,
        accessToken: token.accessToken,
        init,
      });
    } else {
      if (token !== undefined) headers['authorization'] = `Bearer ${token.accessToken}`;
      response = await send(url, { ...init(), method: operation.method, headers });
    }
    const body = await jsonBody(response, MAX_BODY_CHARS);
    return { status: response.status, challenge: response.headers.get('www-authenticate'), body };
  };
}
