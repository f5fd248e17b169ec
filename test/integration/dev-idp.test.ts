import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../kit/memory-logger.js';
import { DevIdpError } from '../../src/demo/idp/dev-idp-error.js';
import { startDevIdp, type RunningDevIdp } from '../../src/demo/idp/dev-idp-server.js';

/*
 * The development identity provider over real HTTP on 127.0.0.1: discovery, keys and rotation, the
 * password grant, the MFA step (Auth0's mfa_required / mfa-otp exchange) and the simulated authenticator,
 * and every refusal. The logger writes into memory; the last test checks no line carries a password or a
 * token. The clock is the real one plus a skew the tests move, so tokens still verify against jose's clock.
 */

const AUDIENCE = 'https://my-banking-api';
const MFA_GRANT = 'http://auth0.com/oauth/grant-type/mfa-otp';
const FORM = 'application/x-www-form-urlencoded';

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

describe('development identity provider', () => {
  const log = memoryLogger();
  let skewMs = 0;
  const now = () => Date.now() + skewMs;
  let idp: RunningDevIdp;
  let base: string;
  /** Everything no log line may contain: passwords sent, mfa tokens, access tokens and their signatures. */
  const secrets = new Set<string>(['alice-password', 'bob-password', 'not-the-password', 'guess']);

  const keep = (token: unknown): string => {
    expect(typeof token).toBe('string');
    const text = token as string;
    secrets.add(text);
    const signature = text.split('.')[2];
    if (signature !== undefined) secrets.add(signature);
    return text;
  };

  const call = async (path: string, init: RequestInit = {}): Promise<Reply> => {
    const response = await fetch(`${base}${path}`, init);
    const text = await response.text();
    expect(response.headers.get('content-type')).toBe('application/json');
    return {
      status: response.status,
      headers: response.headers,
      body: JSON.parse(text) as Record<string, unknown>,
    };
  };
  const postForm = (params: Record<string, string>, path = '/oauth/token') =>
    call(path, {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams(params).toString(),
    });
  const postJson = (body: unknown, path = '/oauth/token') =>
    call(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const login = (extra: Record<string, string> = {}) =>
    postForm({
      grant_type: 'password',
      username: 'alice',
      password: 'alice-password',
      audience: AUDIENCE,
      scope: 'view:balance',
      ...extra,
    });
  const submitOtp = (mfaToken: string, otp: string) =>
    postForm({ grant_type: MFA_GRANT, mfa_token: mfaToken, otp });
  /** The code of the latest `mfa_code` line: the user's "phone". */
  const loggedCode = (): string => {
    const line = log
      .records()
      .filter((record) => record['event'] === 'mfa_code')
      .at(-1);
    expect(line).toBeDefined();
    return line!['code'] as string;
  };
  /** Verifies against a fresh remote key set, as a verifier that has never seen these keys would. */
  const verify = async (token: string) =>
    jwtVerify(token, createRemoteJWKSet(new URL(`${idp.issuer}/.well-known/jwks.json`)), {
      issuer: idp.issuer,
      audience: AUDIENCE,
      typ: 'at+jwt',
      algorithms: ['RS256'],
      currentDate: new Date(now()),
    });
  const jwksKids = async (): Promise<string[]> => {
    const { body } = await call('/.well-known/jwks.json');
    return (body['keys'] as { kid: string }[]).map((key) => key.kid);
  };
  /** Logs in as alice with `extra`, expects the MFA step, and returns its mfa_token. */
  const beginMfa = async (extra: Record<string, string>): Promise<string> => {
    const reply = await login(extra);
    expect(reply.status).toBe(403);
    expect(reply.body['error']).toBe('mfa_required');
    return keep(reply.body['mfa_token']); // an mfa_token is a credential too: never logged
  };

  beforeAll(async () => {
    idp = await startDevIdp({ host: '127.0.0.1', port: 0, audience: AUDIENCE, logger: log.logger, now });
    base = `http://127.0.0.1:${idp.port}`;
  });

  afterAll(async () => {
    await idp?.close();
  });

  it('logs a started line with the bound port and the issuer', () => {
    const started = log.records().find((record) => record['event'] === 'started');
    expect(started).toMatchObject({ port: idp.port, issuer: base, development_only: true });
    expect(idp.issuer).toBe(base);
    expect(idp.port).toBeGreaterThan(0);
  });

  it('publishes a discovery document whose issuer is exactly the issuer', async () => {
    const reply = await call('/.well-known/openid-configuration');
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      issuer: base,
      jwks_uri: `${base}/.well-known/jwks.json`,
      token_endpoint: `${base}/oauth/token`,
      grant_types_supported: ['password', MFA_GRANT, 'authorization_code'],
      acr_values_supported: ['urn:bank:pwd', 'urn:bank:mfa'],
      scopes_supported: ['openid', 'view:balance', 'transfer:funds'],
      token_endpoint_auth_methods_supported: ['none'],
      x_development_only: true,
    });
  });

  it('publishes one RS256 public key', async () => {
    const { body } = await call('/.well-known/jwks.json');
    const keys = body['keys'] as Record<string, unknown>[];
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256' });
    expect(typeof keys[0]!['kid']).toBe('string');
    expect(keys[0]).not.toHaveProperty('d'); // never the private half
  });

  it('issues a password-only token for view:balance', async () => {
    const before = Math.floor(now() / 1000);
    const reply = await login();
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'view:balance' });
    const token = keep(reply.body['access_token']);
    const { payload, protectedHeader } = await verify(token);
    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: (await jwksKids())[0] });
    expect(payload).toMatchObject({
      iss: base,
      sub: 'alice',
      aud: AUDIENCE,
      scope: 'view:balance',
      client_id: 'authz-dev-client',
      amr: ['pwd'],
      acr: 'urn:bank:pwd',
    });
    expect(payload.exp).toBe(payload.iat! + 600);
    expect(payload['auth_time']).toBe(payload.iat);
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('takes JSON bodies and a client_id, and logs token_issued without the token', async () => {
    const reply = await postJson({
      grant_type: 'password',
      username: 'bob',
      password: 'bob-password',
      audience: AUDIENCE,
      scope: 'openid view:balance view:balance',
      client_id: 'demo-client',
    });
    expect(reply.status).toBe(200);
    expect(reply.body['scope']).toBe('openid view:balance'); // duplicates dropped, order kept
    const { payload } = await verify(keep(reply.body['access_token']));
    expect(payload).toMatchObject({ sub: 'bob', client_id: 'demo-client', scope: 'openid view:balance' });
    expect(log.records().at(-1)).toMatchObject({
      event: 'token_issued',
      user: 'bob',
      scopes: ['openid', 'view:balance'],
      acr: 'urn:bank:pwd',
      jti: payload.jti,
    });
  });

  it('answers a wrong password and an unknown user alike: 403 invalid_grant', async () => {
    const wrong = await login({ password: 'not-the-password' });
    const unknown = await login({ username: 'mallory', password: 'guess' });
    expect(wrong.status).toBe(403);
    expect(wrong.body['error']).toBe('invalid_grant');
    expect(unknown.status).toBe(403);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('asks for MFA when transfer:funds is requested, and logs the code', async () => {
    const reply = await login({ scope: 'view:balance transfer:funds' });
    expect(reply.status).toBe(403);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.body).toEqual({
      error: 'mfa_required',
      error_description: 'Multi-factor authentication required',
      mfa_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), // 32 bytes, base64url
    });
    const records = log.records();
    expect(records.at(-2)).toMatchObject({ event: 'mfa_required', user: 'alice', reasons: ['scope'] });
    const code = records.at(-1)!;
    expect(code).toMatchObject({ event: 'mfa_code', user: 'alice', development_only: true });
    expect(code['code']).toMatch(/^\d{6}$/);
    expect(code['msg']).toBe(`MFA code for alice: ${code['code'] as string} (development only)`);
  });

  it('counts wrong codes and voids the transaction after five', async () => {
    const mfaToken = await beginMfa({ scope: 'transfer:funds' });
    const code = loggedCode();
    const wrong = code === '000000' ? '111111' : '000000';
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      const reply = await submitOtp(mfaToken, wrong);
      expect(reply.status).toBe(403);
      expect(reply.body).toEqual({ error: 'invalid_grant', error_description: 'the one-time code is wrong' });
    }
    const after = await submitOtp(mfaToken, code);
    expect(after.status).toBe(403);
    expect(after.body['error']).toBe('expired_token');
  });

  it('accepts the right code after fewer than five wrong ones', async () => {
    const mfaToken = await beginMfa({ scope: 'transfer:funds' });
    const code = loggedCode();
    for (let attempt = 1; attempt <= 4; attempt += 1)
      expect((await submitOtp(mfaToken, 'nope')).body['error']).toBe('invalid_grant');
    const reply = await submitOtp(mfaToken, code);
    expect(reply.status).toBe(200);
    keep(reply.body['access_token']);
  });

  it('completes MFA with the right code: a fresh strong login, the original scopes, single use', async () => {
    const mfaToken = await beginMfa({ scope: 'view:balance transfer:funds', client_id: 'mobile-app' });
    const code = loggedCode();
    skewMs += 30_000; // the user takes 30 seconds to read their phone
    const completedAt = Math.floor(now() / 1000);
    const reply = await submitOtp(mfaToken, code);
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.body).toMatchObject({
      token_type: 'Bearer',
      expires_in: 600,
      scope: 'view:balance transfer:funds',
    });
    const { payload } = await verify(keep(reply.body['access_token']));
    expect(payload).toMatchObject({
      sub: 'alice',
      aud: AUDIENCE,
      client_id: 'mobile-app',
      scope: 'view:balance transfer:funds',
      amr: ['pwd', 'mfa'],
      acr: 'urn:bank:mfa',
    });
    expect(payload['auth_time']).toBeGreaterThanOrEqual(completedAt);
    expect(log.records().at(-1)).toMatchObject({
      event: 'token_issued',
      acr: 'urn:bank:mfa',
      amr: ['pwd', 'mfa'],
    });

    const again = await submitOtp(mfaToken, code);
    expect(again.status).toBe(403);
    expect(again.body['error']).toBe('expired_token');
  });

  it('asks for MFA when acr_values names urn:bank:mfa, even for view:balance only', async () => {
    const mfaToken = await beginMfa({ acr_values: 'urn:bank:mfa' });
    expect(log.records().at(-2)).toMatchObject({ event: 'mfa_required', reasons: ['acr_values'] });
    const reply = await submitOtp(mfaToken, loggedCode());
    expect(reply.status).toBe(200);
    const { payload } = await verify(keep(reply.body['access_token']));
    expect(payload).toMatchObject({ scope: 'view:balance', acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'] });
  });

  it('does not ask for MFA when acr_values names only urn:bank:pwd', async () => {
    const reply = await login({ acr_values: 'urn:bank:pwd' });
    expect(reply.status).toBe(200);
    const { payload } = await verify(keep(reply.body['access_token']));
    expect(payload['acr']).toBe('urn:bank:pwd');
  });

  it.each(['300', '0'])('asks for MFA when max_age=%s is sent', async (maxAge) => {
    await beginMfa({ max_age: maxAge });
    expect(log.records().at(-2)).toMatchObject({ event: 'mfa_required', reasons: ['max_age'] });
  });

  it('serves the pending code from the simulated authenticator', async () => {
    const mfaToken = await beginMfa({ scope: 'transfer:funds' });
    const reply = await call(`/dev/authenticator?mfa_token=${encodeURIComponent(mfaToken)}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ otp: loggedCode() });

    expect((await submitOtp(mfaToken, reply.body['otp'] as string)).status).toBe(200);
    const used = await call(`/dev/authenticator?mfa_token=${encodeURIComponent(mfaToken)}`);
    expect(used.status).toBe(404);
    expect(used.body['error']).toBe('expired_token');
    expect((await call('/dev/authenticator')).status).toBe(400);
  });

  it('expires a pending code after 5 minutes', async () => {
    const mfaToken = await beginMfa({ scope: 'transfer:funds' });
    const code = loggedCode();
    skewMs += 5 * 60_000;
    expect((await call(`/dev/authenticator?mfa_token=${mfaToken}`)).status).toBe(404);
    const reply = await submitOtp(mfaToken, code);
    expect(reply.status).toBe(403);
    expect(reply.body['error']).toBe('expired_token');
  });

  it('answers expired_token for an mfa_token it never issued', async () => {
    const reply = await submitOtp('A'.repeat(43), '123456');
    expect(reply.status).toBe(403);
    expect(reply.body['error']).toBe('expired_token');
  });

  it('rotates keys: new tokens use the new kid, old tokens keep verifying until the old key is retired', async () => {
    const oldToken = keep((await login()).body['access_token']);
    const oldKid = decodeProtectedHeader(oldToken).kid;

    const { kid } = await idp.rotateKeys();
    expect(kid).not.toBe(oldKid);
    expect(await jwksKids()).toEqual([kid, oldKid]);
    const newToken = keep((await login()).body['access_token']);
    expect(decodeProtectedHeader(newToken).kid).toBe(kid);
    await verify(oldToken);
    await verify(newToken);
    expect(log.records().at(-2)).toMatchObject({ event: 'keys_rotated', kid, retired: [] });

    const { kid: newest } = await idp.rotateKeys({ retirePrevious: true });
    expect(await jwksKids()).toEqual([newest]);
    await expect(verify(oldToken)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    await expect(verify(newToken)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    await verify(keep((await login()).body['access_token']));
  });

  it('rotates keys over HTTP from loopback', async () => {
    const before = await jwksKids();
    const rotated = await call('/dev/rotate-keys', { method: 'POST' });
    expect(rotated.status).toBe(200);
    expect(rotated.body['published']).toEqual([rotated.body['kid'], ...before]);
    expect(await jwksKids()).toEqual(rotated.body['published']);

    const retired = await postJson({ retire_previous: true }, '/dev/rotate-keys');
    expect(retired.status).toBe(200);
    expect(await jwksKids()).toEqual([retired.body['kid']]);

    expect((await postJson({ retire_previous: 'yes' }, '/dev/rotate-keys')).status).toBe(400);
    expect((await postJson({ retire: true }, '/dev/rotate-keys')).status).toBe(400);
    const plain = await call('/dev/rotate-keys', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'retire',
    });
    expect(plain.status).toBe(415);
  });

  describe('refuses bad requests with OAuth-style JSON', () => {
    const password = {
      grant_type: 'password',
      username: 'alice',
      password: 'alice-password',
      audience: AUDIENCE,
      scope: 'view:balance',
    };
    const without = (name: keyof typeof password) =>
      Object.fromEntries(Object.entries(password).filter(([key]) => key !== name));

    it.each([
      ['missing grant_type', without('grant_type'), 400, 'invalid_request'],
      [
        'unknown grant_type',
        { ...password, grant_type: 'client_credentials' },
        400,
        'unsupported_grant_type',
      ],
      ['another audience', { ...password, audience: 'https://other-api' }, 400, 'invalid_request'],
      ['missing audience', without('audience'), 400, 'invalid_request'],
      ['unknown scope', { ...password, scope: 'view:balance delete:bank' }, 400, 'invalid_scope'],
      ['missing scope', without('scope'), 400, 'invalid_request'],
      ['missing password', without('password'), 400, 'invalid_request'],
      ['unknown acr_values', { ...password, acr_values: 'urn:bank:retina' }, 400, 'invalid_request'],
      ['negative max_age', { ...password, max_age: '-1' }, 400, 'invalid_request'],
      ['fractional max_age', { ...password, max_age: '1.5' }, 400, 'invalid_request'],
      ['client_id with spaces', { ...password, client_id: 'my app' }, 400, 'invalid_request'],
      ['mfa-otp without otp', { grant_type: MFA_GRANT, mfa_token: 'x' }, 400, 'invalid_request'],
    ])('%s', async (_name, params, status, error) => {
      const reply = await postForm(params);
      expect(reply.status).toBe(status);
      expect(reply.body).toEqual({ error, error_description: expect.any(String) });
    });

    it('a parameter sent twice', async () => {
      const reply = await call('/oauth/token', {
        method: 'POST',
        headers: { 'content-type': FORM },
        body: `${new URLSearchParams(password).toString()}&scope=transfer%3Afunds`,
      });
      expect(reply.status).toBe(400);
      expect(reply.body['error']).toBe('invalid_request');
    });

    it('an oversized body: 413', async () => {
      const reply = await postForm({ ...password, padding: 'x'.repeat(17 * 1024) });
      expect(reply.status).toBe(413);
      expect(reply.body['error']).toBe('invalid_request');
    });

    it('an oversized body streamed without a content-length: 413', async () => {
      const chunk = new TextEncoder().encode(`grant_type=password&padding=${'x'.repeat(4096)}`);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull: (controller) => {
          if (sent >= 8) controller.close();
          else controller.enqueue(chunk);
          sent += 1;
        },
      });
      // duplex 'half' makes fetch send a chunked stream (no content-length); Node's RequestInit lacks it.
      const init = { method: 'POST', headers: { 'content-type': FORM }, body, duplex: 'half' };
      const reply = await call('/oauth/token', init as RequestInit);
      expect(reply.status).toBe(413);
      expect(reply.body['error']).toBe('invalid_request');
    });

    it('a wrong content type: 415', async () => {
      const reply = await call('/oauth/token', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: new URLSearchParams(password).toString(),
      });
      expect(reply.status).toBe(415);
      expect(reply.body['error']).toBe('invalid_request');
    });

    it.each([
      ['not JSON', '{"grant_type":'],
      ['a JSON array', '["password"]'],
      ['a non-string value', JSON.stringify({ ...password, scope: ['view:balance'] })],
    ])('a JSON body that is %s: 400', async (_name, body) => {
      const reply = await call('/oauth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body,
      });
      expect(reply.status).toBe(400);
      expect(reply.body['error']).toBe('invalid_request');
    });

    it('GET on the token endpoint: 405 with Allow', async () => {
      const reply = await call('/oauth/token');
      expect(reply.status).toBe(405);
      expect(reply.headers.get('allow')).toBe('POST');
      expect(reply.body['error']).toBe('method_not_allowed');
    });

    it('POST on the discovery document: 405', async () => {
      const reply = await call('/.well-known/openid-configuration', { method: 'POST' });
      expect(reply.status).toBe(405);
      expect(reply.headers.get('allow')).toBe('GET');
    });

    it('an unknown path: 404', async () => {
      const reply = await call('/oauth/authorize');
      expect(reply.status).toBe(404);
      expect(reply.body['error']).toBe('not_found');
    });
  });

  describe('options', () => {
    it('uses a configured issuer exactly, and the configured token lifetime', async () => {
      const other = await startDevIdp({
        host: '127.0.0.1',
        port: 0,
        issuer: 'http://localhost:9000/',
        audience: AUDIENCE,
        logger: memoryLogger().logger,
        accessTokenTtlSeconds: 60,
      });
      try {
        const local = `http://127.0.0.1:${other.port}`;
        expect(other.issuer).toBe('http://localhost:9000/');
        const discovery = (await (await fetch(`${local}/.well-known/openid-configuration`)).json()) as object;
        expect(discovery).toMatchObject({
          issuer: 'http://localhost:9000/',
          jwks_uri: 'http://localhost:9000/.well-known/jwks.json',
        });
        const response = await fetch(`${local}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': FORM },
          body: new URLSearchParams({
            grant_type: 'password',
            username: 'bob',
            password: 'bob-password',
            audience: AUDIENCE,
            scope: 'view:balance',
          }).toString(),
        });
        const body = (await response.json()) as { access_token: string; expires_in: number };
        expect(body.expires_in).toBe(60);
        keep(body.access_token);
      } finally {
        await other.close();
      }
    });

    it.each([
      ['an issuer with a path', { issuer: 'http://127.0.0.1:9000/tenant' }],
      ['an issuer that is not a URL', { issuer: 'idp' }],
      ['a zero token lifetime', { accessTokenTtlSeconds: 0 }],
      ['an empty audience', { audience: '' }],
    ])('refuses %s', async (_name, overrides) => {
      const start = startDevIdp({
        host: '127.0.0.1',
        port: 0,
        audience: AUDIENCE,
        logger: memoryLogger().logger,
        ...overrides,
      });
      await expect(start).rejects.toBeInstanceOf(DevIdpError);
      await expect(start).rejects.toMatchObject({ code: 'ERR_DEV_IDP_OPTIONS' });
    });
  });

  // Refusing /dev/* to peers not on loopback is covered by test/unit/demo/idp/dev-idp-loopback.test.ts: a test
  // here would have to send traffic to a non-loopback address, which tests never do.

  it('never logs a password or an access token, and marks every line development only', () => {
    expect(log.lines.length).toBeGreaterThan(20);
    for (const line of log.lines) {
      for (const secret of secrets) expect(line).not.toContain(secret);
      expect(JSON.parse(line)).toMatchObject({ component: 'dev-idp', development_only: true });
    }
  });
});
