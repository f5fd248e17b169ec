import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppConfigError, parseAppConfig } from '../../../web/src/app-config.js';
import {
  authorizationResponseFrom,
  authorizationUrl,
  codeFromResponse,
} from '../../../web/src/authorization-request.js';
import { base64url, codeChallengeS256, createCodeVerifier, createState } from '../../../web/src/pkce.js';
import { readProviderMetadata } from '../../../web/src/provider-metadata.js';
import { SignInError } from '../../../web/src/sign-in-error.js';
import { readTokenResponse } from '../../../web/src/token-response.js';
import { summarizeToken } from '../../../web/src/token-summary.js';

/*
 * The web app's sign-in protocol pieces, without a browser: PKCE (RFC 7636), the authorization request and
 * response checks (RFC 6749 section 4.1, RFC 9207), discovery metadata, token responses and app config.
 * Node has the same WebCrypto the browser has.
 */

function signInError(run: () => unknown): SignInError {
  try {
    run();
  } catch (error) {
    if (error instanceof SignInError) return error;
    throw error;
  }
  throw new Error('expected a SignInError');
}

describe('PKCE', () => {
  it('matches the RFC 7636 appendix B example', async () => {
    expect(await codeChallengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });

  it('makes 43-character unreserved verifiers, different every time, and S256 agrees with node:crypto', async () => {
    const verifiers = new Set(Array.from({ length: 50 }, () => createCodeVerifier()));
    expect(verifiers.size).toBe(50);
    for (const verifier of verifiers) {
      expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await codeChallengeS256(verifier)).toBe(
        createHash('sha256').update(verifier).digest('base64url'),
      );
    }
    expect(createState()).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('base64url has no padding and uses the URL alphabet', () => {
    expect(base64url(new Uint8Array([0xfb, 0xff, 0xfe]))).toBe('-__-');
    expect(base64url(new Uint8Array([1]))).toBe('AQ');
  });
});

describe('authorization request and response', () => {
  const request = {
    clientId: 'bank-spa',
    redirectUri: 'http://127.0.0.1:8000/app/callback.html',
    audience: 'https://my-banking-api',
    state: 'st',
    codeChallenge: 'ch',
  };

  it('carries every parameter once, S256, and keeps the endpoint own query', () => {
    const url = authorizationUrl(new URL('http://idp.test/authorize?tenant=a'), {
      ...request,
      want: { scope: 'transfer:funds' },
    });
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: 'a',
      response_type: 'code',
      client_id: 'bank-spa',
      redirect_uri: 'http://127.0.0.1:8000/app/callback.html',
      scope: 'transfer:funds',
      audience: 'https://my-banking-api',
      state: 'st',
      code_challenge: 'ch',
      code_challenge_method: 'S256',
    });
  });

  it('adds acr_values and max_age only when a challenge asked for them', () => {
    const url = authorizationUrl(new URL('http://idp.test/authorize'), {
      ...request,
      want: { scope: 'transfer:funds', acrValues: 'urn:bank:mfa', maxAge: '600' },
    });
    expect(url.searchParams.get('acr_values')).toBe('urn:bank:mfa');
    expect(url.searchParams.get('max_age')).toBe('600');
  });

  const expected = { state: 'st', issuer: 'http://idp.test', issRequired: true };

  it('returns the code when state and iss match', () => {
    const response = authorizationResponseFrom(
      new URLSearchParams('code=abc&state=st&iss=http%3A%2F%2Fidp.test&x=1'),
    );
    expect(response).toEqual({ code: 'abc', state: 'st', iss: 'http://idp.test' });
    expect(codeFromResponse(response, expected)).toBe('abc');
  });

  it.each([
    ['another state (CSRF)', { code: 'abc', state: 'other', iss: 'http://idp.test' }, 'state_mismatch'],
    ['no state', { code: 'abc', iss: 'http://idp.test' }, 'state_mismatch'],
    ['another issuer (mix-up)', { code: 'abc', state: 'st', iss: 'http://evil.test' }, 'issuer_mismatch'],
    ['no iss when the provider promises it', { code: 'abc', state: 'st' }, 'issuer_mismatch'],
    [
      'an error answer',
      {
        error: 'access_denied',
        error_description: 'too many wrong codes',
        state: 'st',
        iss: 'http://idp.test',
      },
      'authorization_error',
    ],
    ['no code', { state: 'st', iss: 'http://idp.test' }, 'authorization_error'],
  ])('refuses %s', (_name, response, code) => {
    expect(signInError(() => codeFromResponse(response, expected)).code).toBe(code);
  });

  it('shows the provider error in the message', () => {
    const error = signInError(() =>
      codeFromResponse(
        {
          error: 'access_denied',
          error_description: 'too many wrong codes',
          state: 'st',
          iss: 'http://idp.test',
        },
        expected,
      ),
    );
    expect(error.message).toContain('access_denied: too many wrong codes');
  });

  it('accepts a missing iss only from a provider that does not promise one', () => {
    expect(codeFromResponse({ code: 'c', state: 'st' }, { ...expected, issRequired: false })).toBe('c');
  });
});

describe('provider metadata', () => {
  const metadata = {
    issuer: 'http://idp.test',
    authorization_endpoint: 'http://idp.test/authorize',
    token_endpoint: 'http://idp.test/oauth/token',
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
  };

  it('reads the endpoints of the expected issuer', () => {
    const endpoints = readProviderMetadata(metadata, 'http://idp.test');
    expect(endpoints.authorizationEndpoint.href).toBe('http://idp.test/authorize');
    expect(endpoints.tokenEndpoint.href).toBe('http://idp.test/oauth/token');
    expect(endpoints.issParameter).toBe(true);
  });

  it.each([
    ['another issuer', { ...metadata, issuer: 'http://idp.test/' }],
    ['no PKCE S256', { ...metadata, code_challenge_methods_supported: ['plain'] }],
    ['no authorization endpoint', { ...metadata, authorization_endpoint: undefined }],
    ['a javascript: endpoint', { ...metadata, token_endpoint: 'javascript:alert(1)' }],
    ['not an object', ['x']],
  ])('refuses %s', (_name, json) => {
    expect(signInError(() => readProviderMetadata(json, 'http://idp.test')).code).toBe('provider_metadata');
  });
});

describe('token response', () => {
  it('reads a Bearer token, its scope and expiry', () => {
    const grant = readTokenResponse(
      200,
      { access_token: 'tok', token_type: 'Bearer', expires_in: 600, scope: 'openid view:balance' },
      'ignored',
      1_000,
    );
    expect(grant).toEqual({
      accessToken: 'tok',
      tokenType: 'Bearer',
      scopes: ['openid', 'view:balance'],
      expiresAtMs: 601_000,
    });
  });

  it('reads a DPoP-bound token, its type in any letter case (RFC 6749 section 7.1, RFC 9449 section 5)', () => {
    for (const type of ['DPoP', 'dpop', 'DPOP'])
      expect(readTokenResponse(200, { access_token: 't', token_type: type }, 's', 0).tokenType).toBe('DPoP');
  });

  it('takes the requested scope when the answer omits it (RFC 6749 section 5.1)', () => {
    expect(readTokenResponse(200, { access_token: 't', token_type: 'bearer' }, 'a b', 0).scopes).toEqual([
      'a',
      'b',
    ]);
  });

  it.each([
    [
      'an error answer',
      400,
      { error: 'invalid_grant', error_description: 'code used' },
      'invalid_grant: code used',
    ],
    ['no token', 200, { token_type: 'Bearer' }, 'no access token'],
    [
      'an MTLS token type',
      200,
      { access_token: 't', token_type: 'N_A' },
      'neither a DPoP nor a Bearer token',
    ],
    ['no token type', 200, { access_token: 't' }, 'neither a DPoP nor a Bearer token'],
    ['not JSON', 502, undefined, 'status 502'],
  ])('refuses %s', (_name, status, json, message) => {
    const error = signInError(() => readTokenResponse(status, json, 's', 0));
    expect(error.code).toBe('token_error');
    expect(error.message).toContain(message);
  });
});

describe('app config', () => {
  const config = {
    issuer: 'http://127.0.0.1:9000',
    client_id: 'bank-spa',
    audience: 'https://my-banking-api',
    scope: 'openid view:balance',
  };

  it('reads the served config', () => {
    expect(parseAppConfig(config)).toEqual({
      issuer: 'http://127.0.0.1:9000',
      clientId: 'bank-spa',
      audience: 'https://my-banking-api',
      scope: 'openid view:balance',
    });
  });

  it.each([
    ['no issuer', { ...config, issuer: undefined }],
    ['a non-http issuer', { ...config, issuer: 'javascript:alert(1)' }],
    ['an issuer with a query', { ...config, issuer: 'http://idp.test/?a=1' }],
    ['an empty client_id', { ...config, client_id: '' }],
    ['a scope with a quote', { ...config, scope: 'openid "x"' }],
    ['a scope with double spaces', { ...config, scope: 'openid  view:balance' }],
    ['an array', [config]],
  ])('refuses %s', (_name, json) => {
    expect(() => parseAppConfig(json)).toThrow(AppConfigError);
  });
});

describe('token summary', () => {
  it('shows the claims of a JWT, never trusting them', () => {
    const payload = Buffer.from(
      JSON.stringify({
        sub: 'alice',
        scope: 'transfer:funds',
        acr: 'urn:bank:mfa',
        amr: ['pwd', 'mfa', 7],
        exp: 9,
      }),
    ).toString('base64url');
    expect(summarizeToken(`eyJhbGciOiJSUzI1NiJ9.${payload}.sig`)).toEqual({
      subject: 'alice',
      scope: 'transfer:funds',
      acr: 'urn:bank:mfa',
      amr: ['pwd', 'mfa'],
      authTime: undefined,
      expiresAt: 9,
      jkt: undefined,
    });
  });

  it('gives an empty summary for an opaque token', () => {
    expect(summarizeToken('opaque')).toEqual({
      subject: undefined,
      scope: '',
      acr: undefined,
      amr: [],
      authTime: undefined,
      expiresAt: undefined,
      jkt: undefined,
    });
  });

  it('reads cnf.jkt, the thumbprint a DPoP-bound token names (RFC 9449 section 6.1)', () => {
    const payload = Buffer.from(JSON.stringify({ cnf: { jkt: 'abc' } })).toString('base64url');
    expect(summarizeToken(`eyJhbGciOiJSUzI1NiJ9.${payload}.sig`).jkt).toBe('abc');
    const other = Buffer.from(JSON.stringify({ cnf: { 'x5t#S256': 'abc' } })).toString('base64url');
    expect(summarizeToken(`eyJhbGciOiJSUzI1NiJ9.${other}.sig`).jkt).toBeUndefined();
  });
});
