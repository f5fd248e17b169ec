import { AuthorizeError, type RedirectTarget } from './authorize-error.js';
import { OAuthError } from './oauth-error.js';
import { isPkceValue } from './pkce.js';
import { SPA_CLIENT_ID } from './protocol-values.js';
import { parseAcrValues, parseMaxAge, parseScopes } from './token-request.js';

/** `GET /authorize`, checked: every parameter well-formed and allowed. Development only. */
export interface AuthorizeRequest {
  readonly clientId: string;
  /** One of the registered redirect URIs, exactly as sent. */
  readonly redirectUri: string;
  readonly state: string | undefined;
  /** The S256 `code_challenge` (RFC 7636 section 4.3); `plain` is refused. */
  readonly codeChallenge: string;
  /** Requested scopes, in request order, duplicates removed. */
  readonly scopes: readonly string[];
  readonly audience: string;
  readonly acrValues: readonly string[];
  readonly maxAgeSeconds: number | undefined;
  /** OpenID Connect Core section 3.1.2.1: `login` always asks for the password, `none` never shows a page. */
  readonly prompt: 'login' | 'none' | undefined;
}

/** What the authorization endpoint checks a request against. Development only. */
export interface AuthorizeContext {
  /** Registered redirect URIs, compared by exact string (RFC 9700 section 4.1.3). */
  readonly redirectUris: readonly string[];
  /** The one API audience tokens are issued for; the default when `audience` is not sent. */
  readonly audience: string;
}

// Printable ASCII, bounded: the state is echoed in a URL and kept in memory until the sign-in ends.
const STATE = /^[\x20-\x7E]{0,1024}$/;
// Checked for repetition: a parameter sent twice is ambiguous (RFC 6749 section 3.1).
const ONCE = [
  'response_type',
  'code_challenge',
  'code_challenge_method',
  'scope',
  'audience',
  'acr_values',
  'max_age',
  'prompt',
];

/**
 * Validates the query of `GET /authorize` (RFC 6749 section 4.1.1, RFC 7636 section 4.3). Client and
 * redirect URI come first: until both are known good, an error cannot be redirected. Unrecognized
 * parameters are ignored (RFC 6749 section 3.1). Development only.
 *
 * @throws AuthorizeError without a target for a bad `client_id` or `redirect_uri`; with one for any other
 * bad parameter: `invalid_request`, `unsupported_response_type`, `invalid_scope`.
 */
export function parseAuthorizeRequest(query: URLSearchParams, context: AuthorizeContext): AuthorizeRequest {
  const clientId = single(query, 'client_id', undefined);
  if (clientId === undefined || clientId === '')
    throw new AuthorizeError('invalid_request', 'The request names no app (client_id).', undefined);
  if (clientId !== SPA_CLIENT_ID)
    throw new AuthorizeError('invalid_request', `No app is registered as "${clientId}".`, undefined);
  const redirectUri = single(query, 'redirect_uri', undefined);
  if (redirectUri === undefined || redirectUri === '')
    throw new AuthorizeError('invalid_request', 'The request has no redirect_uri.', undefined);
  if (!context.redirectUris.includes(redirectUri))
    throw new AuthorizeError(
      'invalid_request',
      'The redirect_uri is not registered for this app.',
      undefined,
    );

  const stateless: RedirectTarget = { redirectUri, state: undefined };
  const state = single(query, 'state', stateless);
  if (state !== undefined && !STATE.test(state))
    throw new AuthorizeError(
      'invalid_request',
      'state must be at most 1024 printable ASCII characters',
      stateless,
    );
  const target: RedirectTarget = { redirectUri, state };
  for (const name of ONCE) single(query, name, target);

  const invalid = (description: string) => new AuthorizeError('invalid_request', description, target);
  const responseType = query.get('response_type');
  if (responseType === null || responseType === '') throw invalid('response_type is required');
  if (responseType !== 'code')
    throw new AuthorizeError('unsupported_response_type', 'response_type must be code', target);
  const method = query.get('code_challenge_method');
  if (method === null || method === '') throw invalid('code_challenge_method=S256 is required (PKCE)');
  if (method !== 'S256')
    throw invalid('transform algorithm not supported: code_challenge_method must be S256');
  const codeChallenge = query.get('code_challenge');
  if (codeChallenge === null || codeChallenge === '') throw invalid('code_challenge is required (PKCE)');
  if (!isPkceValue(codeChallenge)) throw invalid('code_challenge must be 43 to 128 unreserved characters');
  const audience = query.get('audience');
  if (audience !== null && audience !== context.audience)
    throw invalid(`audience must be ${context.audience}`);
  const prompt = query.get('prompt');
  if (prompt !== null && prompt !== 'login' && prompt !== 'none')
    throw invalid('prompt must be login or none');

  try {
    return {
      clientId,
      redirectUri,
      state,
      codeChallenge,
      scopes: parseScopes(query.get('scope') ?? ''),
      audience: context.audience,
      acrValues: parseAcrValues(query.get('acr_values') ?? ''),
      maxAgeSeconds: parseMaxAge(query.get('max_age') ?? undefined),
      prompt: prompt ?? undefined,
    };
  } catch (error) {
    if (error instanceof OAuthError && (error.code === 'invalid_scope' || error.code === 'invalid_request'))
      throw new AuthorizeError(error.code, error.message, target);
    throw error;
  }
}

/** The one value of `name`, undefined when absent; refused when repeated, on a page or by redirect. */
function single(
  query: URLSearchParams,
  name: string,
  target: RedirectTarget | undefined,
): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1)
    throw new AuthorizeError('invalid_request', `${name} appears more than once`, target);
  return values[0];
}
