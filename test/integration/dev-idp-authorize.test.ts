import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../kit/memory-logger.js';
import { createDpopKey } from '../../src/client/dpop-key.js';
import { DevIdpError } from '../../src/demo/idp/dev-idp-error.js';
import { startDevIdp, type RunningDevIdp } from '../../src/demo/idp/dev-idp-server.js';

/*
 * The authorization code flow with PKCE of the development identity provider, as the bank's browser app
 * drives it, over real HTTP on 127.0.0.1: the sign-in pages (scraped by element id, as a browser test
 * would), the redirects back to the app (never followed), the session cookie (carried by hand), the code
 * exchange, CORS, and every refusal. The last test checks that no log line carries a secret.
 */

const AUDIENCE = 'https://my-banking-api';
const REDIRECT_URI = 'http://127.0.0.1:8000/app/callback.html';
const APP_ORIGIN = 'http://127.0.0.1:8000';
const FORM = 'application/x-www-form-urlencoded';

interface Page {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** A PKCE pair (RFC 7636 appendix B): a 43-character verifier and its S256 challenge. */
function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The value of the hidden `txn` field of a sign-in page. */
function txnOf(page: Page): string {
  const match = /name="txn" value="([^"]+)"/.exec(page.text);
  expect(match, 'a txn field').not.toBeNull();
  return match![1]!;
}

/** The text of the element with `id`. */
function elementText(page: Page, id: string): string | undefined {
  return new RegExp(`id="${id}"[^>]*>([\\s\\S]*?)</(?:p|span|div)>`).exec(page.text)?.[1];
}

describe('development identity provider: authorization code flow with PKCE', () => {
  const log = memoryLogger();
  let skewMs = 0;
  const now = () => Date.now() + skewMs;
  let idp: RunningDevIdp;
  let base: string;
  /** Everything no log line may contain. MFA codes are not here: the log is the demo user's phone. */
  const secrets = new Set<string>(['alice-password', 'bob-password', 'not-the-password']);
  const keep = (secret: string): string => {
    secrets.add(secret);
    return secret;
  };

  const request = async (path: string, init: RequestInit = {}): Promise<Page> => {
    const response = await fetch(`${base}${path}`, { redirect: 'manual', ...init });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  /** `GET /authorize` with the app's usual parameters, `extra` replacing or adding some. */
  const authorize = (extra: Record<string, string | undefined> = {}, cookie?: string, challenge?: string) => {
    const params: Record<string, string | undefined> = {
      response_type: 'code',
      client_id: 'bank-spa',
      redirect_uri: REDIRECT_URI,
      code_challenge: challenge ?? pkcePair().challenge,
      code_challenge_method: 'S256',
      state: 'af0ifjsldkj',
      scope: 'view:balance',
      ...extra,
    };
    const query = new URLSearchParams(
      Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    return request(`/authorize?${query.toString()}`, cookie === undefined ? {} : { headers: { cookie } });
  };
  const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    request(path, {
      method: 'POST',
      headers: { 'content-type': FORM, ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  const submitPassword = (page: Page, username = 'alice', password = 'alice-password') =>
    post('/authorize/login', { txn: keep(txnOf(page)), username, password });
  const submitOtp = (page: Page, otp: string) => post('/authorize/mfa', { txn: txnOf(page), otp });
  /** The parameters of the redirect back to the app; fails unless the reply is a 303 to REDIRECT_URI. */
  const redirected = (page: Page, redirectUri = REDIRECT_URI): URLSearchParams => {
    expect(page.status).toBe(303);
    const location = page.headers.get('location') ?? '';
    expect(location.startsWith(`${redirectUri}?`)).toBe(true);
    const params = new URL(location).searchParams;
    const code = params.get('code');
    if (code !== null) keep(code);
    return params;
  };
  /** The `dev_idp_session=...` pair of a reply's Set-Cookie, for the next request's Cookie header. */
  const sessionCookie = (page: Page): string => {
    const setCookie = page.headers.getSetCookie().find((value) => value.startsWith('dev_idp_session='));
    expect(setCookie).toBeDefined();
    const pair = setCookie!.split(';')[0]!;
    keep(pair.slice('dev_idp_session='.length));
    return pair;
  };
  const exchange = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    post(
      '/oauth/token',
      { grant_type: 'authorization_code', client_id: 'bank-spa', redirect_uri: REDIRECT_URI, ...fields },
      headers,
    );
  const tokenBody = (page: Page): Record<string, unknown> => JSON.parse(page.text) as Record<string, unknown>;
  const verify = async (token: string) =>
    jwtVerify(keep(token), createRemoteJWKSet(new URL(`${idp.issuer}/.well-known/jwks.json`)), {
      issuer: idp.issuer,
      audience: AUDIENCE,
      typ: 'at+jwt',
      algorithms: ['RS256'],
      currentDate: new Date(now()),
    });
  /** Password login as alice for `extra`: the code, the verifier and the session cookie. */
  const passwordLogin = async (extra: Record<string, string> = {}) => {
    const { verifier, challenge } = pkcePair();
    keep(verifier);
    const reply = await submitPassword(await authorize(extra, undefined, challenge));
    return { params: redirected(reply), verifier, cookie: sessionCookie(reply) };
  };

  beforeAll(async () => {
    idp = await startDevIdp({ host: '127.0.0.1', port: 0, audience: AUDIENCE, logger: log.logger, now });
    base = `http://127.0.0.1:${idp.port}`;
  });

  afterAll(async () => {
    await idp?.close();
  });

  it('advertises the authorization endpoint, code flow, S256 and iss in discovery', async () => {
    const reply = await request('/.well-known/openid-configuration');
    expect(JSON.parse(reply.text)).toMatchObject({
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      grant_types_supported: expect.arrayContaining(['authorization_code']),
    });
  });

  it('signs in with a password: login page, code with state and iss, token with acr urn:bank:pwd', async () => {
    const { verifier, challenge } = pkcePair();
    keep(verifier);
    const page = await authorize({ scope: 'openid view:balance' }, undefined, challenge);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('Bank demo identity provider (development only)');
    expect(page.text).toContain('bank-spa');
    expect(page.text).toContain('see your balance');
    expect(page.text).toContain('know who you are');
    expect(page.text).toContain('<form method="post" action="/authorize/login">');
    expect(page.text).toContain('id="username" name="username"');
    expect(page.text).toContain('id="password" name="password" type="password"');
    expect(page.text).toMatch(/<button id="login" type="submit">Log in<\/button>/);
    expect(page.text).toContain('alice-password'); // the demo users hint
    expect(txnOf(page)).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const reply = await submitPassword(page);
    const params = redirected(reply);
    expect(params.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.get('state')).toBe('af0ifjsldkj');
    expect(params.get('iss')).toBe(base);
    expect(reply.headers.getSetCookie()[0]).toMatch(
      /^dev_idp_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    sessionCookie(reply);

    const before = Math.floor(now() / 1000);
    const token = await exchange({ code: params.get('code')!, code_verifier: verifier });
    expect(token.status).toBe(200);
    expect(token.headers.get('cache-control')).toBe('no-store');
    const body = tokenBody(token);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'openid view:balance' });
    const { payload } = await verify(body['access_token'] as string);
    expect(payload).toMatchObject({
      iss: base,
      sub: 'alice',
      aud: AUDIENCE,
      scope: 'openid view:balance',
      client_id: 'bank-spa',
      acr: 'urn:bank:pwd',
      amr: ['pwd'],
    });
    expect(payload['auth_time']).toBeGreaterThanOrEqual(before - 1);
    expect(
      log
        .records()
        .filter((record) => record['event'] === 'code_issued')
        .at(-1),
    ).toMatchObject({
      user: 'alice',
      scopes: ['openid', 'view:balance'],
      client_id: 'bank-spa',
    });
  });

  it('binds the exchanged token to the key of a DPoP proof sent with the code', async () => {
    const key = await createDpopKey();
    const { params, verifier } = await passwordLogin();
    const proof = await key.proof({ method: 'POST', url: `${base}/oauth/token` });
    const token = await exchange(
      { code: params.get('code')!, code_verifier: verifier },
      { dpop: keep(proof) },
    );
    expect(token.status).toBe(200);
    const body = tokenBody(token);
    expect(body['token_type']).toBe('DPoP');
    const { payload } = await verify(body['access_token'] as string);
    expect(payload['cnf']).toEqual({ jkt: key.thumbprint });
    expect(payload['client_id']).toBe('bank-spa');
  });

  it('answers a code sent with a bad DPoP proof 400 invalid_dpop_proof, and the code survives it', async () => {
    const key = await createDpopKey();
    const { params, verifier } = await passwordLogin();
    const code = params.get('code')!;
    const wrongMethod = await key.proof({ method: 'GET', url: `${base}/oauth/token` });
    const refused = await exchange({ code, code_verifier: verifier }, { dpop: keep(wrongMethod) });
    expect(refused.status).toBe(400);
    expect(tokenBody(refused)['error']).toBe('invalid_dpop_proof');
    const proof = await key.proof({ method: 'POST', url: `${base}/oauth/token` });
    const token = await exchange({ code, code_verifier: verifier }, { dpop: keep(proof) });
    expect(token.status).toBe(200);
    expect(tokenBody(token)['token_type']).toBe('DPoP');
  });

  it('serves the sign-in pages with no-store, no framing, no referrer, no sniffing and a strict CSP', async () => {
    const page = await authorize();
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://127.0.0.1:8000 http://localhost:8000; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(page.text).not.toContain('<script');
  });

  it('asks for a second factor for transfer:funds, explains why, and counts wrong codes', async () => {
    const { verifier, challenge } = pkcePair();
    keep(verifier);
    const page = await submitPassword(
      await authorize({ scope: 'view:balance transfer:funds' }, undefined, challenge),
    );
    expect(page.status).toBe(200);
    expect(page.text).toContain('<h1>Second factor required</h1>');
    expect(elementText(page, 'mfa-reason')).toContain(
      'The bank app asked for permission to transfer funds (transfer:funds). This bank grants it only after a second factor.',
    );
    expect(page.text).toContain('Demo authenticator (development only)');
    const code = elementText(page, 'demo-otp')!;
    expect(code).toMatch(/^\d{6}$/);
    expect(
      log
        .records()
        .filter((record) => record['event'] === 'mfa_code')
        .at(-1),
    ).toMatchObject({
      user: 'alice',
      code,
      expires_in: 300,
    });
    expect(page.text).toContain('<form method="post" action="/authorize/mfa">');
    expect(page.text).toContain('id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code"');
    expect(page.text).toContain('id="verify" type="submit"');
    sessionCookie(page); // the password step already opened a session

    const wrong = await submitOtp(page, code === '000000' ? '111111' : '000000');
    expect(wrong.status).toBe(200);
    expect(elementText(wrong, 'error')).toBe('That code is wrong. 4 attempts left.');
    expect(elementText(wrong, 'demo-otp')).toBe(code); // the same code stays valid
    expect(txnOf(wrong)).toBe(txnOf(page));

    const completedAt = Math.floor(now() / 1000);
    const params = redirected(await submitOtp(wrong, code));
    expect(params.get('state')).toBe('af0ifjsldkj');
    const token = await exchange({ code: params.get('code')!, code_verifier: verifier });
    expect(token.status).toBe(200);
    const { payload } = await verify(tokenBody(token)['access_token'] as string);
    expect(payload).toMatchObject({
      sub: 'alice',
      scope: 'view:balance transfer:funds',
      client_id: 'bank-spa',
      acr: 'urn:bank:mfa',
      amr: ['pwd', 'mfa'],
    });
    expect(payload['auth_time']).toBeGreaterThanOrEqual(completedAt);
  });

  it.each([
    [{ acr_values: 'urn:bank:mfa' }, 'The bank asked for a login with a second factor (urn:bank:mfa).'],
    [{ max_age: '300' }, 'The bank asked for a fresh login (within the last 300 seconds).'],
  ])('explains the second factor asked for by %o', async (extra, reason) => {
    const page = await submitPassword(await authorize(extra));
    expect(elementText(page, 'mfa-reason')).toContain(reason);
  });

  it('sends access_denied to the app after five wrong codes', async () => {
    let page = await submitPassword(await authorize({ scope: 'transfer:funds' }));
    const code = elementText(page, 'demo-otp')!;
    const wrong = code === '000000' ? '111111' : '000000';
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      page = await submitOtp(page, wrong);
      expect(elementText(page, 'error')).toBe(
        `That code is wrong. ${5 - attempt} ${attempt === 4 ? 'attempt' : 'attempts'} left.`,
      );
    }
    const params = redirected(await submitOtp(page, wrong));
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('error_description')).toBeTruthy();
    expect(params.get('state')).toBe('af0ifjsldkj');
    expect(params.get('iss')).toBe(base);
    expect((await submitOtp(page, code)).status).toBe(400); // the sign-in is void
  });

  it('re-renders the login page on a wrong password, and sends access_denied after five', async () => {
    let page = await authorize();
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      page = await submitPassword(page, attempt % 2 === 0 ? 'mallory' : 'alice', 'not-the-password');
      expect(page.status).toBe(200);
      expect(elementText(page, 'error')).toBe('Wrong username or password.');
      expect(page.text).toContain('id="login"');
    }
    const params = redirected(await submitPassword(page, 'alice', 'not-the-password'));
    expect(params.get('error')).toBe('access_denied');
    expect(log.records().filter((record) => record['event'] === 'login_failed')).toHaveLength(5);
  });

  it('answers an unknown or used sign-in with an HTML error page', async () => {
    const page = await authorize();
    redirected(await submitPassword(page));
    for (const reply of [
      await submitPassword(page),
      await post('/authorize/login', { txn: 'A'.repeat(43), username: 'alice', password: 'alice-password' }),
      await post('/authorize/mfa', { txn: 'nope', otp: '123456' }),
      await post('/authorize/mfa', { otp: '123456' }),
    ]) {
      expect(reply.status).toBe(400);
      expect(reply.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(reply.headers.get('location')).toBeNull();
      expect(elementText(reply, 'error')).toBe('This sign-in has expired; start again from the app.');
    }
  });

  it('refuses a form field sent twice, and a form of another type', async () => {
    const page = await authorize();
    const twice = await request('/authorize/login', {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: `txn=${txnOf(page)}&username=alice&password=alice-password&username=bob`,
    });
    expect(twice.status).toBe(400);
    expect(twice.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const json = await request('/authorize/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ txn: txnOf(page), username: 'alice', password: 'alice-password' }),
    });
    expect(json.status).toBe(415);
  });

  describe('single sign-on with the session cookie', () => {
    it('issues a code at once for view:balance', async () => {
      const { cookie } = await passwordLogin();
      const { verifier, challenge } = pkcePair();
      keep(verifier);
      const params = redirected(await authorize({ state: 'second' }, cookie, challenge));
      expect(params.get('state')).toBe('second');
      const token = await exchange({ code: params.get('code')!, code_verifier: verifier });
      const { payload } = await verify(tokenBody(token)['access_token'] as string);
      expect(payload).toMatchObject({ sub: 'alice', acr: 'urn:bank:pwd', amr: ['pwd'] });
    });

    it('goes straight to the second factor for transfer:funds, every time', async () => {
      const { cookie } = await passwordLogin();
      for (let round = 0; round < 2; round += 1) {
        const page = await authorize({ scope: 'transfer:funds' }, cookie);
        expect(page.status).toBe(200);
        expect(page.text).toContain('Second factor required');
        expect(page.text).not.toContain('id="password"');
        redirected(await submitOtp(page, elementText(page, 'demo-otp')!));
      }
    });

    it('shows the password form for prompt=login, even with a session', async () => {
      const { cookie } = await passwordLogin();
      const page = await authorize({ prompt: 'login' }, cookie);
      expect(page.status).toBe(200);
      expect(page.text).toContain('id="password"');
    });

    it('answers prompt=none without a session with login_required, by redirect', async () => {
      const params = redirected(await authorize({ prompt: 'none' }));
      expect(params.get('error')).toBe('login_required');
      expect(params.get('state')).toBe('af0ifjsldkj');
      expect(params.get('iss')).toBe(base);
    });

    it('answers prompt=none with a session: a code, or login_required when a second factor is due', async () => {
      const { cookie } = await passwordLogin();
      expect(redirected(await authorize({ prompt: 'none' }, cookie)).get('code')).not.toBeNull();
      expect(
        redirected(await authorize({ prompt: 'none', scope: 'transfer:funds' }, cookie)).get('error'),
      ).toBe('login_required');
    });

    it('asks for the password again when the session is older than max_age', async () => {
      const { cookie } = await passwordLogin();
      skewMs += 120_000;
      const stale = await authorize({ max_age: '60' }, cookie);
      expect(stale.text).toContain('id="password"');
      const mfa = await submitPassword(stale);
      expect(mfa.text).toContain('Second factor required');

      const fresh = await authorize({ max_age: '600' }, cookie);
      expect(fresh.text).toContain('Second factor required');
      expect(fresh.text).not.toContain('id="password"');
    });

    it('ignores an unknown session cookie', async () => {
      const page = await authorize({}, `dev_idp_session=${'A'.repeat(43)}; other=1`);
      expect(page.text).toContain('id="password"');
    });
  });

  describe('the code exchange refuses', () => {
    it('a wrong, a malformed or a missing code_verifier, and the code is used up anyway', async () => {
      for (const codeVerifier of [pkcePair().verifier, 'short', 'x'.repeat(43) + ' ']) {
        const { params, verifier } = await passwordLogin();
        const reply = await exchange({ code: params.get('code')!, code_verifier: codeVerifier });
        expect(reply.status).toBe(400);
        expect(tokenBody(reply)['error']).toBe('invalid_grant');
        const retry = await exchange({ code: params.get('code')!, code_verifier: verifier });
        expect(tokenBody(retry)['error']).toBe('invalid_grant');
      }
      const { params } = await passwordLogin();
      const missing = await exchange({ code: params.get('code')! });
      expect(missing.status).toBe(400);
      expect(tokenBody(missing)['error']).toBe('invalid_request');
    });

    it('a code presented twice', async () => {
      const { params, verifier } = await passwordLogin();
      expect((await exchange({ code: params.get('code')!, code_verifier: verifier })).status).toBe(200);
      const again = await exchange({ code: params.get('code')!, code_verifier: verifier });
      expect(again.status).toBe(400);
      expect(tokenBody(again)).toEqual({ error: 'invalid_grant', error_description: expect.any(String) });
    });

    it('a code older than 60 seconds', async () => {
      const { params, verifier } = await passwordLogin();
      skewMs += 61_000;
      const reply = await exchange({ code: params.get('code')!, code_verifier: verifier });
      expect(reply.status).toBe(400);
      expect(tokenBody(reply)['error']).toBe('invalid_grant');
    });

    it.each([
      ['another redirect_uri', { redirect_uri: 'http://localhost:8000/app/callback.html' }],
      ['another client_id', { client_id: 'authz-dev-client' }],
    ])('%s than the code was issued for', async (_name, fields) => {
      const { params, verifier } = await passwordLogin();
      const reply = await exchange({ code: params.get('code')!, code_verifier: verifier, ...fields });
      expect(reply.status).toBe(400);
      expect(tokenBody(reply)['error']).toBe('invalid_grant');
    });

    it('a code it never issued', async () => {
      const reply = await exchange({ code: 'A'.repeat(43), code_verifier: pkcePair().verifier });
      expect(reply.status).toBe(400);
      expect(tokenBody(reply)['error']).toBe('invalid_grant');
    });
  });

  describe('refuses bad authorization requests', () => {
    it.each([
      ['an unknown client_id', { client_id: 'evil-app' }],
      ['no client_id', { client_id: undefined }],
      ['an unregistered redirect_uri', { redirect_uri: 'https://evil.example/callback' }],
      ['a redirect_uri differing by a trailing slash', { redirect_uri: `${REDIRECT_URI}/` }],
      ['no redirect_uri', { redirect_uri: undefined }],
    ])('%s: a 400 page and no redirect', async (_name, extra) => {
      const page = await authorize(extra);
      expect(page.status).toBe(400);
      expect(page.headers.get('location')).toBeNull();
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('x-frame-options')).toBe('DENY');
    });

    it('a redirect_uri sent twice: a 400 page and no redirect', async () => {
      const query = `response_type=code&client_id=bank-spa&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`;
      const page = await request(`/authorize?${query}`);
      expect(page.status).toBe(400);
      expect(page.headers.get('location')).toBeNull();
    });

    it.each([
      ['code_challenge_method=plain', { code_challenge_method: 'plain' }, 'invalid_request'],
      ['no code_challenge_method', { code_challenge_method: undefined }, 'invalid_request'],
      ['no code_challenge', { code_challenge: undefined }, 'invalid_request'],
      ['a short code_challenge', { code_challenge: 'abc' }, 'invalid_request'],
      ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
      ['no response_type', { response_type: undefined }, 'invalid_request'],
      ['an unknown scope', { scope: 'view:balance delete:bank' }, 'invalid_scope'],
      ['no scope', { scope: undefined }, 'invalid_request'],
      ['another audience', { audience: 'https://other-api' }, 'invalid_request'],
      ['unknown acr_values', { acr_values: 'urn:bank:retina' }, 'invalid_request'],
      ['a negative max_age', { max_age: '-1' }, 'invalid_request'],
      ['prompt=consent', { prompt: 'consent' }, 'invalid_request'],
    ])('%s: redirected with error, state and iss', async (_name, extra, error) => {
      const params = redirected(await authorize(extra));
      expect(params.get('error')).toBe(error);
      expect(params.get('error_description')).toBeTruthy();
      expect(params.get('state')).toBe('af0ifjsldkj');
      expect(params.get('iss')).toBe(base);
      expect(params.get('code')).toBeNull();
    });

    it('accepts the configured audience when sent', async () => {
      expect((await authorize({ audience: AUDIENCE })).status).toBe(200);
    });

    it('a parameter sent twice: redirected with invalid_request', async () => {
      const { challenge } = pkcePair();
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: 'bank-spa',
        redirect_uri: REDIRECT_URI,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state: 's1',
        scope: 'view:balance',
      });
      query.append('scope', 'transfer:funds');
      const params = redirected(await request(`/authorize?${query.toString()}`));
      expect(params.get('error')).toBe('invalid_request');
      expect(params.get('error_description')).toBe('scope appears more than once');
      expect(params.get('state')).toBe('s1');
    });

    it('an over-long state: redirected with invalid_request and no state', async () => {
      const params = redirected(await authorize({ state: 'x'.repeat(1025) }));
      expect(params.get('error')).toBe('invalid_request');
      expect(params.has('state')).toBe(false);
    });

    it('escapes markup in the state and in echoed values', async () => {
      const state = '<script>alert(1)</script>"\'&';
      const page = await authorize({ state });
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('<script>');
      expect(redirected(await submitPassword(page)).get('state')).toBe(state);

      const error = await authorize({ client_id: '<script>alert(1)</script>' });
      expect(error.status).toBe(400);
      expect(error.text).not.toContain('<script>');
      expect(error.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    });
  });

  describe('CORS for the browser app', () => {
    it.each(['/.well-known/openid-configuration', '/.well-known/jwks.json'])(
      '%s allows the app origin only',
      async (path) => {
        const allowed = await request(path, { headers: { origin: APP_ORIGIN } });
        expect(allowed.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
        expect(allowed.headers.get('vary')).toBe('Origin');
        expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
        const other = await request(path, { headers: { origin: 'https://evil.example' } });
        expect(other.headers.get('access-control-allow-origin')).toBeNull();
        expect(other.headers.get('vary')).toBe('Origin');
      },
    );

    it('the token endpoint answers the app origin, on errors too', async () => {
      const { params, verifier } = await passwordLogin();
      const ok = await exchange(
        { code: params.get('code')!, code_verifier: verifier },
        { origin: 'http://localhost:8000' },
      );
      expect(ok.status).toBe(200);
      keep(tokenBody(ok)['access_token'] as string);
      expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:8000');
      const refused = await exchange({ code: 'used', code_verifier: verifier }, { origin: APP_ORIGIN });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      const other = await exchange(
        { code: 'used', code_verifier: verifier },
        { origin: 'http://127.0.0.1:8001' },
      );
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      expect(other.headers.get('vary')).toBe('Origin');
    });

    it('answers a preflight from the app origin with 204, and from others with 403', async () => {
      const preflight = (origin: string) =>
        request('/oauth/token', {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type, dpop',
          },
        });
      const allowed = await preflight(APP_ORIGIN);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(allowed.headers.get('access-control-allow-methods')).toBe('POST');
      // The app sends a DPoP proof with its token requests (RFC 9449 section 5).
      expect(allowed.headers.get('access-control-allow-headers')).toBe('content-type, dpop');
      expect(allowed.headers.get('access-control-max-age')).toBe('600');
      expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
      const other = await preflight('https://evil.example');
      expect(other.status).toBe(403);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('sends no CORS headers on the sign-in pages', async () => {
      const page = await authorize({}, undefined);
      expect(page.headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  describe('options', () => {
    it('registers the configured redirect URIs and keeps their query', async () => {
      const registered = 'http://127.0.0.1:5173/cb?tenant=a%20b';
      const other = await startDevIdp({
        host: '127.0.0.1',
        port: 0,
        audience: AUDIENCE,
        logger: memoryLogger().logger,
        redirectUris: [registered],
      });
      try {
        const local = `http://127.0.0.1:${other.port}`;
        const query = new URLSearchParams({
          response_type: 'code',
          client_id: 'bank-spa',
          redirect_uri: registered,
          code_challenge: pkcePair().challenge,
          code_challenge_method: 'S256',
          scope: 'view:balance',
          prompt: 'none',
        });
        const reply = await fetch(`${local}/authorize?${query.toString()}`, { redirect: 'manual' });
        expect(reply.status).toBe(303);
        expect(reply.headers.get('location')).toBe(
          `${registered}&error=login_required&error_description=the+user+must+log+in&iss=${encodeURIComponent(local)}`,
        );
        const defaultUri = await fetch(
          `${local}/authorize?${query.toString().replace(encodeURIComponent(registered), encodeURIComponent(REDIRECT_URI))}`,
          { redirect: 'manual' },
        );
        expect(defaultUri.status).toBe(400);
        const cors = await fetch(`${local}/.well-known/jwks.json`, {
          headers: { origin: 'http://127.0.0.1:5173' },
        });
        expect(cors.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:5173');
      } finally {
        await other.close();
      }
    });

    it.each([
      ['an empty list', []],
      ['a relative URI', ['/app/callback.html']],
      ['a fragment', ['http://127.0.0.1:8000/cb#x']],
      ['userinfo', ['http://user@127.0.0.1:8000/cb']],
      ['another scheme', ['javascript:alert(1)']],
    ])('refuses redirectUris with %s', async (_name, redirectUris) => {
      const start = startDevIdp({
        host: '127.0.0.1',
        port: 0,
        audience: AUDIENCE,
        logger: memoryLogger().logger,
        redirectUris,
      });
      await expect(start).rejects.toBeInstanceOf(DevIdpError);
      await expect(start).rejects.toMatchObject({ code: 'ERR_DEV_IDP_OPTIONS' });
    });
  });

  it('logs the sign-in events without secrets, and marks every line development only', () => {
    const events = new Set(log.records().map((record) => record['event']));
    for (const event of [
      'authorize_request',
      'login_failed',
      'mfa_required',
      'mfa_code',
      'mfa_failed',
      'code_issued',
      'token_issued',
    ])
      expect(events).toContain(event);
    expect(log.records().find((record) => record['event'] === 'authorize_request')).toMatchObject({
      client_id: 'bank-spa',
      scopes: expect.any(Array),
    });
    expect(secrets.size).toBeGreaterThan(30);
    for (const line of log.lines) {
      for (const secret of secrets) expect(line).not.toContain(secret);
      expect(JSON.parse(line)).toMatchObject({ component: 'dev-idp', development_only: true });
    }
  });
});
