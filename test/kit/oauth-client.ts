import { createHash, randomBytes } from 'node:crypto';
import { dpopProof, type DpopKey } from './dpop-proofs.js';

/**
 * The client's side of an OAuth authorization code flow against a real provider (Keycloak,
 * oidc-provider): a browser's cookies across its pages, PKCE (RFC 7636), and the token request, with a
 * DPoP proof when the token is to be bound (RFC 9449 section 5).
 */

/** A browser's cookies at a provider; a cookie set to expire (a provider's way to delete one) leaves. */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair!.indexOf('=');
      const [name, value] = [pair!.slice(0, at).trim(), pair!.slice(at + 1)];
      const expired = attributes.some((attribute) => {
        const [key, when] = attribute.trim().split('=');
        if (key?.toLowerCase() === 'max-age') return Number(when) <= 0;
        return key?.toLowerCase() === 'expires' && Date.parse(when ?? '') <= Date.now();
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** `fetch` with these cookies, following no redirect; the answer's cookies are kept. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string> | undefined), cookie: this.header() },
    });
    this.take(response);
    return response;
  }
}

/** A PKCE verifier and its S256 challenge. */
export function pkcePair(): { readonly verifier: string; readonly challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The code's redirect target, if `location` is the client's redirect URI (throws when it has no code). */
export function codeAt(location: URL, redirectUri: string): string | undefined {
  if (location.origin + location.pathname !== redirectUri) return undefined;
  const code = location.searchParams.get('code');
  if (code === null) throw new Error(`the provider redirected without a code: ${location.search}`);
  return code;
}

/**
 * Exchanges an authorization code for an access token (`params` adds to the request, e.g. `resource`),
 * with a DPoP proof of `dpop` (no access token yet, so no `ath`) when given.
 */
export async function exchangeCode(
  tokenEndpoint: string,
  grant: {
    readonly code: string;
    readonly verifier: string;
    readonly redirectUri: string;
    readonly clientId: string;
    readonly dpop?: DpopKey;
    readonly params?: Readonly<Record<string, string>>;
  },
): Promise<string> {
  const proof =
    grant.dpop === undefined
      ? undefined
      : await dpopProof(grant.dpop, {
          method: 'POST',
          url: tokenEndpoint,
          accessToken: '',
          claims: { ath: undefined },
        });
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(proof === undefined ? {} : { dpop: proof }),
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: grant.code,
      redirect_uri: grant.redirectUri,
      client_id: grant.clientId,
      code_verifier: grant.verifier,
      ...grant.params,
    }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (body.access_token === undefined) throw new Error(`token request refused: ${JSON.stringify(body)}`);
  return body.access_token;
}
