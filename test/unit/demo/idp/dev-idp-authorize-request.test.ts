import { describe, expect, it } from 'vitest';
import { AuthorizeError } from '../../../../src/demo/idp/authorize-error.js';
import { parseAuthorizeRequest } from '../../../../src/demo/idp/authorize-request.js';

const REDIRECT_URI = 'http://127.0.0.1:8000/app/callback.html';
const CONTEXT = { redirectUris: [REDIRECT_URI], audience: 'https://my-banking-api' };
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const VALID: Record<string, string> = {
  response_type: 'code',
  client_id: 'bank-spa',
  redirect_uri: REDIRECT_URI,
  code_challenge: CHALLENGE,
  code_challenge_method: 'S256',
  state: 'xyz',
  scope: 'openid view:balance view:balance',
};

function parse(overrides: Record<string, string | undefined>, appended: [string, string][] = []) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...VALID, ...overrides }))
    if (value !== undefined) query.append(name, value);
  for (const [name, value] of appended) query.append(name, value);
  return () => parseAuthorizeRequest(query, CONTEXT);
}

function refusal(run: () => unknown): AuthorizeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AuthorizeError);
    return error as AuthorizeError;
  }
  throw new Error('expected an AuthorizeError');
}

describe('parseAuthorizeRequest', () => {
  it('accepts a PKCE code request and defaults the audience', () => {
    expect(
      parse({ acr_values: 'urn:bank:mfa', max_age: '300', prompt: 'login', unknown: 'ignored' })(),
    ).toEqual({
      clientId: 'bank-spa',
      redirectUri: REDIRECT_URI,
      state: 'xyz',
      codeChallenge: CHALLENGE,
      scopes: ['openid', 'view:balance'],
      audience: 'https://my-banking-api',
      acrValues: ['urn:bank:mfa'],
      maxAgeSeconds: 300,
      prompt: 'login',
    });
    expect(parse({ state: undefined })().state).toBeUndefined();
  });

  it.each([
    ['no client_id', { client_id: undefined }],
    ['an unknown client_id', { client_id: 'other' }],
    ['no redirect_uri', { redirect_uri: undefined }],
    ['an unregistered redirect_uri', { redirect_uri: 'http://127.0.0.1:8000/app/other.html' }],
    ['a redirect_uri with another case', { redirect_uri: REDIRECT_URI.toUpperCase() }],
    ['a redirect_uri with a query added', { redirect_uri: `${REDIRECT_URI}?x=1` }],
  ])('refuses %s without a redirect target', (_name, overrides) => {
    expect(refusal(parse(overrides)).target).toBeUndefined();
  });

  it.each(['client_id', 'redirect_uri'])('refuses %s sent twice without a redirect target', (name) => {
    expect(refusal(parse({}, [[name, VALID[name]!]])).target).toBeUndefined();
  });

  it.each([
    ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
    ['plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['no method', { code_challenge_method: undefined }, 'invalid_request'],
    ['a challenge with +', { code_challenge: `${CHALLENGE.slice(1)}+` }, 'invalid_request'],
    ['a scope it does not know', { scope: 'admin' }, 'invalid_scope'],
    ['an empty scope', { scope: ' ' }, 'invalid_request'],
    ['another audience', { audience: 'https://other' }, 'invalid_request'],
    ['a fractional max_age', { max_age: '1.5' }, 'invalid_request'],
    ['prompt=select_account', { prompt: 'select_account' }, 'invalid_request'],
  ])('redirects %s as %s with the state', (_name, overrides, code) => {
    const error = refusal(parse(overrides));
    expect(error.code).toBe(code);
    expect(error.target).toEqual({ redirectUri: REDIRECT_URI, state: 'xyz' });
  });

  it.each([
    'response_type',
    'code_challenge',
    'code_challenge_method',
    'scope',
    'audience',
    'acr_values',
    'max_age',
    'prompt',
  ])('redirects %s sent twice as invalid_request', (name) => {
    const error = refusal(
      parse(
        { audience: 'https://my-banking-api', acr_values: 'urn:bank:pwd', max_age: '1', prompt: 'login' },
        [[name, 'x']],
      ),
    );
    expect(error.code).toBe('invalid_request');
    expect(error.message).toBe(`${name} appears more than once`);
    expect(error.target?.state).toBe('xyz');
  });

  it.each([
    ['sent twice', {}, [['state', 'again']] as [string, string][]],
    ['longer than 1024 characters', { state: 's'.repeat(1025) }, []],
    ['with a control character', { state: 'a\nb' }, []],
  ])('redirects a state %s without echoing it', (_name, overrides, appended) => {
    const error = refusal(parse(overrides, appended));
    expect(error.code).toBe('invalid_request');
    expect(error.target).toEqual({ redirectUri: REDIRECT_URI, state: undefined });
  });
});
