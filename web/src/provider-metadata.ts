import { SignInError } from './sign-in-error.js';

/** The identity provider endpoints the app uses, from its discovery document. */
export interface ProviderEndpoints {
  readonly issuer: string;
  readonly authorizationEndpoint: URL;
  readonly tokenEndpoint: URL;
  /** RFC 9207: the provider puts `iss` in every authorization response, so the app can require it. */
  readonly issParameter: boolean;
}

/**
 * Reads OpenID Connect Discovery 1.0 / RFC 8414 metadata. The `issuer` must equal the configured one
 * exactly (RFC 8414 section 3.3), or another provider's document could redirect the sign-in; the app also
 * refuses a provider that does not offer PKCE with S256.
 *
 * @throws SignInError `provider_metadata`.
 */
export function readProviderMetadata(json: unknown, expectedIssuer: string): ProviderEndpoints {
  const fail = (why: string): never => {
    throw new SignInError('provider_metadata', `the identity provider's discovery document ${why}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('is not a JSON object');
  const metadata = json as Record<string, unknown>;
  if (metadata['issuer'] !== expectedIssuer) return fail(`names another issuer than ${expectedIssuer}`);
  const endpoint = (name: string): URL => {
    const value = metadata[name];
    const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
    if (url === undefined || !/^https?:$/.test(url.protocol) || url.hash !== '')
      return fail(`has no usable ${name}`);
    return url;
  };
  const methods = metadata['code_challenge_methods_supported'];
  if (!Array.isArray(methods) || !methods.includes('S256')) fail('does not offer PKCE with S256');
  return {
    issuer: expectedIssuer,
    authorizationEndpoint: endpoint('authorization_endpoint'),
    tokenEndpoint: endpoint('token_endpoint'),
    issParameter: metadata['authorization_response_iss_parameter_supported'] === true,
  };
}
