import { describe, expect, it } from 'vitest';
import { authorizationResponse } from '../../../../src/demo/idp/authorization-response.js';
import { CorsPolicy } from '../../../../src/demo/idp/cors.js';
import { escapeHtml } from '../../../../src/demo/idp/html-page.js';
import { redirectOrigins, redirectUriProblem } from '../../../../src/demo/idp/redirect-uris.js';

describe('redirect URIs', () => {
  it.each([
    ['http://127.0.0.1:8000/app/callback.html', undefined],
    ['https://bank.example/cb?tenant=1', undefined],
    ['/app/callback.html', 'is not an absolute URL'],
    ['ftp://127.0.0.1/cb', 'is not an http(s) URL'],
    ['http://127.0.0.1:8000/cb#top', 'has a fragment'],
    ['http://127.0.0.1:8000/cb#', 'has a fragment'],
    ['http://me:pw@127.0.0.1:8000/cb', 'has userinfo'],
  ])('%s: %s', (uri, problem) => {
    expect(redirectUriProblem(uri)).toBe(problem);
  });

  it('lists each origin once, in order', () => {
    expect(
      redirectOrigins(['http://127.0.0.1:8000/a', 'http://localhost:8000/a', 'http://127.0.0.1:8000/b']),
    ).toEqual(['http://127.0.0.1:8000', 'http://localhost:8000']);
  });
});

describe('authorizationResponse', () => {
  const issuer = 'http://127.0.0.1:9000';

  it('appends code, state and iss to the redirect URI', () => {
    const reply = authorizationResponse({ redirectUri: 'http://app/cb', state: 'a b&c' }, issuer, {
      code: 'C',
    });
    expect(reply).toEqual({
      kind: 'redirect',
      location: 'http://app/cb?code=C&state=a+b%26c&iss=http%3A%2F%2F127.0.0.1%3A9000',
      headers: {},
    });
  });

  it('keeps the registered query byte for byte and leaves out an absent state', () => {
    const reply = authorizationResponse({ redirectUri: 'http://app/cb?x=%20y', state: undefined }, issuer, {
      error: 'access_denied',
      error_description: 'no',
    });
    expect(reply.location).toBe(
      'http://app/cb?x=%20y&error=access_denied&error_description=no&iss=http%3A%2F%2F127.0.0.1%3A9000',
    );
  });
});

describe('CorsPolicy', () => {
  const cors = new CorsPolicy(['http://127.0.0.1:8000']);

  it('echoes an allowed origin and always varies on Origin', () => {
    expect(cors.headersFor('http://127.0.0.1:8000')).toEqual({
      'access-control-allow-origin': 'http://127.0.0.1:8000',
      vary: 'Origin',
    });
    expect(cors.headersFor('http://127.0.0.1:8001')).toEqual({ vary: 'Origin' });
    expect(cors.headersFor(undefined)).toEqual({ vary: 'Origin' });
    expect(cors.headersFor('null')).toEqual({ vary: 'Origin' });
  });

  it('answers preflights: 204 for the allowed origin, 403 otherwise', () => {
    expect(cors.preflight('http://127.0.0.1:8000', 'POST')).toEqual({
      kind: 'empty',
      status: 204,
      headers: {
        'access-control-allow-origin': 'http://127.0.0.1:8000',
        vary: 'Origin',
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type, dpop',
        'access-control-max-age': '600',
      },
    });
    expect(cors.preflight(undefined, 'POST').status).toBe(403);
  });
});

describe('escapeHtml', () => {
  it('escapes the five characters that matter in content and quoted attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});
