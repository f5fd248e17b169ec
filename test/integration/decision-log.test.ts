import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIENCE,
  httpCheckRequest,
  ISSUER,
  policyYaml,
  startInProcessAuthz,
  TOKEN_DEFAULTS,
  type CheckClient,
  type CheckResponseView,
  type InProcessAuthz,
  type LogSink,
} from '../kit/authz-harness.js';
import {
  generateTestKey,
  signTestToken,
  tamperWithPayload,
  unsecuredToken,
  type TestKey,
} from '../kit/tokens.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';

/*
 * The log sink: a batch of requests, allowed and denied for every reason, through the in-process server
 * with the production logger writing into memory. Every line must parse as JSON, each Check call must
 * produce exactly one decision line, and no line may carry a token, a signature or an Authorization value.
 */

const DOWN_ISSUER = 'https://down.example/';

interface Expected {
  readonly decision: 'allow' | 'deny';
  readonly status: number;
  readonly reason: string;
  readonly route: string | null;
  readonly subject: string | null;
  readonly path: string;
}

interface Case {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  /** Authorization header values: none, one (headers map), or several (header_map, raw_value bytes). */
  readonly authorization: readonly string[];
  readonly expected: Expected;
}

describe('decision log', () => {
  let key: TestKey;
  let jwks: KeyServer;
  let downJwks: KeyServer;
  let authz: InProcessAuthz;
  let policyFile: string;
  let sink: LogSink;
  let client: CheckClient;
  /** Every secret a log line must never contain: tokens, their signatures, Authorization values. */
  const secrets = new Set<string>();
  const cases: Case[] = [];
  const responses = new Map<string, CheckResponseView>();

  const keep = (token: string) => {
    secrets.add(token);
    const signature = token.split('.')[2] ?? '';
    if (signature !== '') secrets.add(signature);
    return token;
  };

  beforeAll(async () => {
    key = await generateTestKey('log-key');
    const downKey = await generateTestKey('down-key');
    const strangerKey = await generateTestKey('never-published');
    jwks = await startKeyServer([key.publicJwk]);
    downJwks = await startKeyServer([downKey.publicJwk]);
    downJwks.behave('http-500');
    // The shared policy plus a second trusted issuer whose key set cannot be fetched.
    const text = policyYaml({ keys: { jwksUri: jwks.url } }).replace(
      'routes:\n',
      `  - issuer: ${DOWN_ISSUER}\n` +
        `    audiences: [${AUDIENCE}]\n` +
        `    jwks_uri: ${downJwks.url}\n` +
        '    algorithms: [RS256]\n' +
        'routes:\n',
    );
    authz = await startInProcessAuthz({ policy: text, tempPrefix: 'authz-log-' });
    ({ policyFile, sink, client } = authz);

    const now = Math.floor(Date.now() / 1000);
    const sign = async (claims: Record<string, unknown> = {}, signer: TestKey = key) =>
      keep(await signTestToken(signer, TOKEN_DEFAULTS, { claims }));
    const view = await sign();
    const viewInQuery = await sign({ jti: 'in-query' });
    const tampered = keep(tamperWithPayload(await sign({ jti: 'tampered' })));
    const hmac = keep(
      await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', scope: 'view:balance', exp: now + 600 })
        .setProtectedHeader({ alg: 'HS256', kid: key.kid })
        .sign(new TextEncoder().encode('a-shared-secret-that-must-never-verify')),
    );
    const none = keep(
      unsecuredToken({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', scope: 'view:balance', exp: now + 600 }),
    );
    const notAJwt = keep('c2VjcmV0LXRoYXQtaXMtbm90LWEtand0LWF0LWFsbA');
    const huge = await sign({ padding: 'p'.repeat(9000) });
    const second = await sign({ sub: 'mallory' });

    const allow = (route: string, subject: string | null, path: string): Expected => ({
      decision: 'allow',
      status: 200,
      reason: 'allowed',
      route,
      subject,
      path,
    });
    const deny = (
      status: number,
      reason: string,
      route: string | null,
      path: string,
      subject: string | null = null,
    ) => ({
      decision: 'deny' as const,
      status,
      reason,
      route,
      subject,
      path,
    });
    const bearer = (token: string) => keep(`Bearer ${token}`);
    const add = (
      name: string,
      method: string,
      path: string,
      authorization: readonly string[],
      expected: Expected,
    ) => cases.push({ name, method, path, authorization, expected });

    add('allowed', 'GET', '/balance', [bearer(view)], allow('GET /balance', 'alice', '/balance'));
    add(
      'allowed, query string dropped from the log',
      'GET',
      `/balance?access_token=${viewInQuery}&x=/transfer`,
      [bearer(view)],
      allow('GET /balance', 'alice', '/balance'),
    );
    add('public', 'GET', '/healthz', [bearer(notAJwt)], allow('* /healthz', null, '/healthz'));
    add(
      'parameter route',
      'GET',
      '/accounts/7/balance#frag',
      [bearer(view)],
      allow('GET /accounts/{id}/balance', 'alice', '/accounts/7/balance'),
    );
    add(
      'empty scope list',
      'GET',
      '/profile',
      [bearer(await sign({ scope: undefined }))],
      allow('GET /profile', 'alice', '/profile'),
    );
    add('no route', 'GET', '/nowhere', [bearer(view)], deny(403, 'no_route', null, '/nowhere'));
    add(
      'dot segments',
      'GET',
      '/accounts/../transfer',
      [bearer(view)],
      deny(400, 'path_invalid', null, '/accounts/../transfer'),
    );
    add(
      'token only in the query string',
      'GET',
      `/balance?access_token=${viewInQuery}`,
      [],
      deny(401, 'credentials_missing', 'GET /balance', '/balance'),
    );
    add(
      'Basic credentials',
      'GET',
      '/balance',
      [keep('Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk')],
      deny(401, 'credentials_missing', 'GET /balance', '/balance'),
    );
    add(
      'token followed by white space and more',
      'GET',
      '/balance',
      [keep(`Bearer ${view} trailing-garbage`)],
      deny(400, 'credentials_malformed', 'GET /balance', '/balance'),
    );
    add(
      'token with a quote',
      'GET',
      '/balance',
      [keep(`Bearer ${view}"`)],
      deny(400, 'credentials_malformed', 'GET /balance', '/balance'),
    );
    add(
      'two Authorization headers joined by Envoy',
      'GET',
      '/balance',
      [keep(`Bearer ${view}, Bearer ${second}`)],
      deny(400, 'credentials_malformed', 'GET /balance', '/balance'),
    );
    add(
      'two Authorization headers in header_map',
      'GET',
      '/balance',
      [bearer(view), bearer(second)],
      deny(400, 'credentials_malformed', 'GET /balance', '/balance'),
    );
    add(
      'too large',
      'GET',
      '/balance',
      [bearer(huge)],
      deny(401, 'token_too_large', 'GET /balance', '/balance'),
    );
    add(
      'not a JWT',
      'GET',
      '/balance',
      [bearer(notAJwt)],
      deny(401, 'token_malformed', 'GET /balance', '/balance'),
    );
    add(
      'untrusted issuer',
      'GET',
      '/balance',
      [bearer(keep(await signTestToken(key, { issuer: 'https://evil.example/', audience: AUDIENCE })))],
      deny(401, 'token_issuer_unknown', 'GET /balance', '/balance'),
    );
    add(
      'alg none',
      'GET',
      '/balance',
      [bearer(none)],
      deny(401, 'token_algorithm_not_allowed', 'GET /balance', '/balance'),
    );
    add(
      'HS256',
      'GET',
      '/balance',
      [bearer(hmac)],
      deny(401, 'token_algorithm_not_allowed', 'GET /balance', '/balance'),
    );
    add(
      'unknown kid',
      'GET',
      '/balance',
      [bearer(await sign({}, strangerKey))],
      deny(401, 'token_key_unknown', 'GET /balance', '/balance'),
    );
    add(
      'tampered',
      'GET',
      '/balance',
      [bearer(tampered)],
      deny(401, 'token_signature_invalid', 'GET /balance', '/balance'),
    );
    add(
      'expired',
      'GET',
      '/balance',
      [bearer(await sign({ iat: now - 3600, exp: now - 3000 }))],
      deny(401, 'token_expired', 'GET /balance', '/balance'),
    );
    add(
      'not yet valid',
      'GET',
      '/balance',
      [bearer(await sign({ nbf: now + 3600 }))],
      deny(401, 'token_not_yet_valid', 'GET /balance', '/balance'),
    );
    add(
      'wrong audience',
      'GET',
      '/balance',
      [bearer(await sign({ aud: 'https://other-api.example' }))],
      deny(401, 'token_audience_mismatch', 'GET /balance', '/balance'),
    );
    add(
      'no exp',
      'GET',
      '/balance',
      [bearer(await sign({ exp: undefined }))],
      deny(401, 'token_claims_invalid', 'GET /balance', '/balance'),
    );
    add(
      'malformed scope claim',
      'GET',
      '/balance',
      [bearer(await sign({ scope: 42 }))],
      deny(401, 'token_claims_invalid', 'GET /balance', '/balance'),
    );
    add(
      'insufficient scope',
      'POST',
      '/transfer?amount=25',
      [bearer(view)],
      deny(403, 'insufficient_scope', 'POST /transfer', '/transfer', 'alice'),
    );
    add(
      'issuer keys unavailable',
      'GET',
      '/balance',
      [bearer(keep(await signTestToken(downKey, { issuer: DOWN_ISSUER, audience: AUDIENCE })))],
      deny(503, 'keys_unavailable', 'GET /balance', '/balance'),
    );

    for (const [index, testCase] of cases.entries()) {
      const id = `log-${index}`;
      let request: Record<string, unknown>;
      if (testCase.authorization.length <= 1) {
        const [authorization] = testCase.authorization;
        request = httpCheckRequest({
          id,
          method: testCase.method,
          path: testCase.path,
          ...(authorization === undefined ? {} : { authorization }),
        });
      } else {
        request = {
          attributes: {
            request: {
              http: {
                id,
                method: testCase.method,
                path: testCase.path,
                host: 'bank.example',
                header_map: {
                  headers: [
                    { key: ':path', raw_value: Buffer.from(testCase.path) },
                    ...testCase.authorization.map((value) => ({
                      key: 'authorization',
                      raw_value: Buffer.from(value),
                    })),
                  ],
                },
              },
            },
          },
        };
      }
      responses.set(id, await client.check(request));
    }
  });

  afterAll(async () => {
    await authz?.stop();
    await jwks?.close();
    await downJwks?.close();
  });

  const decisionLines = () => sink.records().filter((record) => record['event'] === 'decision');

  it('emits only JSON lines', () => {
    expect(sink.lines().length).toBeGreaterThan(cases.length);
    for (const line of sink.lines()) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
  });

  it('writes exactly one decision line per Check call', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
    expect(decisionLines()).toHaveLength(cases.length);
    for (const index of cases.keys()) {
      expect(decisionLines().filter((record) => record['request_id'] === `log-${index}`)).toHaveLength(1);
    }
  });

  it('covers every outcome: each reason the product has, allowed included', () => {
    expect(new Set(decisionLines().map((record) => record['reason']))).toEqual(
      new Set([
        'allowed',
        'no_route',
        'path_invalid',
        'credentials_missing',
        'credentials_malformed',
        'token_too_large',
        'token_malformed',
        'token_issuer_unknown',
        'token_algorithm_not_allowed',
        'token_key_unknown',
        'token_signature_invalid',
        'token_expired',
        'token_not_yet_valid',
        'token_audience_mismatch',
        'token_claims_invalid',
        'insufficient_scope',
        'keys_unavailable',
      ]),
    );
  });

  it('logs decision, status, reason, route, method, path without query, subject, policy version and duration', async () => {
    const policyVersion = createHash('sha256')
      .update(await readFile(policyFile, 'utf8'))
      .digest('hex')
      .slice(0, 16);
    for (const [index, testCase] of cases.entries()) {
      const id = `log-${index}`;
      const line = decisionLines().find((record) => record['request_id'] === id);
      expect(line, testCase.name).toMatchObject({
        level: 30,
        service: 'authz',
        policy_service: 'default',
        msg: 'decision',
        method: testCase.method,
        policy_version: policyVersion,
        ...testCase.expected,
      });
      expect(line?.['duration_ms'], testCase.name).toEqual(expect.any(Number));
      expect(line?.['duration_ms'] as number, testCase.name).toBeGreaterThanOrEqual(0);
      expect(line?.['path'] as string, testCase.name).not.toMatch(/[?#]/);
      expect(typeof line?.['time'], testCase.name).toBe('string');

      // The log agrees with what Envoy was told.
      const response = responses.get(id);
      const status =
        response?.denied_response?.status?.code ??
        ((response?.ok_response ?? undefined) === undefined ? undefined : 200);
      expect(status, testCase.name).toBe(testCase.expected.status);
    }
    const insufficient = decisionLines().find((record) => record['reason'] === 'insufficient_scope');
    expect(insufficient).toMatchObject({ issuer: ISSUER, missing_scopes: ['transfer:funds'] });
    const unavailable = decisionLines().find((record) => record['reason'] === 'keys_unavailable');
    expect(unavailable).toMatchObject({ issuer: DOWN_ISSUER, missing_scopes: [] });
    // What the token was bound to: bearer for these verified tokens, null where none was verified.
    expect(insufficient).toMatchObject({ token_binding: 'bearer' });
    expect(unavailable).toMatchObject({ token_binding: null });
    const allowed = decisionLines().find(
      (record) => record['reason'] === 'allowed' && record['subject'] !== null,
    );
    expect(allowed).toMatchObject({ token_binding: 'bearer' });
  });

  it('never writes a token, a signature or an Authorization header value, on any line', () => {
    expect(secrets.size).toBeGreaterThan(30);
    const lines = sink.lines();
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThanOrEqual(16);
      for (const line of lines)
        expect(line.includes(secret), `a log line contains ${secret.slice(0, 24)}...`).toBe(false);
    }
    // Nor do the answers the client sees (bodies and challenges).
    for (const response of responses.values()) {
      const visible = JSON.stringify(response);
      for (const secret of secrets) expect(visible.includes(secret)).toBe(false);
    }
  });
});
