import { plainHttpUrl } from '../../src/http/plain-http-url.js';

/** What the bank serves at `/app/config.json`: where to sign in, and as which client. */
export interface AppConfig {
  /** The identity provider's issuer; its endpoints are found by OpenID Connect discovery. */
  readonly issuer: string;
  /** The public client registered at the identity provider (no secret: PKCE protects the code). */
  readonly clientId: string;
  /** The API the tokens are for (`audience`, as Auth0 spells the RFC 8707 resource). */
  readonly audience: string;
  /** What the app asks for at its ordinary sign-in, before any challenge says otherwise. */
  readonly scope: string;
}

/** Why the app cannot start; shown to the person on the page. */
export class AppConfigError extends Error {
  override readonly name = 'AppConfigError';
  readonly code = 'ERR_APP_CONFIG';
}

const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/; // RFC 6749 section 3.3

/**
 * Checks the served configuration: every field present, the issuer an http(s) URL without query or
 * fragment. Anything else is refused rather than guessed at.
 *
 * @throws AppConfigError naming the first bad field.
 */
export function parseAppConfig(json: unknown): AppConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new AppConfigError('config.json is not a JSON object');
  const record = json as Record<string, unknown>;
  const text = (name: string): string => {
    const value = record[name];
    if (typeof value !== 'string' || value === '' || value.length > 2048)
      throw new AppConfigError(`config.json: ${name} must be a non-empty string`);
    return value;
  };
  const issuer = text('issuer');
  const url = plainHttpUrl(issuer);
  if (url === undefined || url.search !== '')
    throw new AppConfigError('config.json: issuer must be an http(s) URL without query or fragment');
  const scope = text('scope');
  if (!SCOPE.test(scope)) throw new AppConfigError('config.json: scope must be space-separated scope tokens');
  return { issuer, clientId: text('client_id'), audience: text('audience'), scope };
}
