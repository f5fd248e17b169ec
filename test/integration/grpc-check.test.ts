import { Client, credentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/policy/policy-error.js';
import {
  AUTHORIZATION_SERVICE,
  startAuthzServer,
  type RunningAuthzServer,
} from '../../src/server/authz-server.js';
import {
  AUDIENCE,
  connectCheckClient,
  connectHealthClient,
  createLogSink,
  createTempDir,
  deniedBody,
  headerValue,
  httpCheckRequest,
  ISSUER,
  policyYaml,
  startInProcessAuthz,
  TOKEN_DEFAULTS,
  writeTextFile,
  type CheckClient,
  type CheckResponseView,
  type HttpCheckInit,
  type InProcessAuthz,
  type LogSink,
} from '../kit/authz-harness.js';
import { canBind, freePort } from '../kit/free-port.js';
import {
  generateTestKey,
  signTestToken,
  tamperWithPayload,
  unsecuredToken,
  type TestKey,
} from '../kit/tokens.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';
import { waitUntil } from '../kit/wait-until.js';

const OVERWRITE_IF_EXISTS_OR_ADD = 2;
const BARE_CHALLENGE = 'Bearer realm="bank-api"';

function expectAllowed(response: CheckResponseView) {
  expect(response.status?.code).toBe(GrpcStatus.OK);
  expect(response.http_response).toBe('ok_response');
  expect(response.denied_response ?? undefined).toBeUndefined();
  const ok = response.ok_response ?? undefined;
  if (ok === undefined) throw new Error(`no ok_response in ${JSON.stringify(response)}`);
  for (const option of ok.headers) expect(option.append_action).toBe(OVERWRITE_IF_EXISTS_OR_ADD);
  // A header it sets must never also be removed (Envoy would apply both).
  const set = ok.headers.map((option) => option.header?.key);
  for (const name of ok.headers_to_remove) expect(set).not.toContain(name);
  return ok;
}

function expectDenied(response: CheckResponseView, httpStatus: number, grpcStatus: number) {
  expect(response.http_response).toBe('denied_response');
  expect(response.ok_response ?? undefined).toBeUndefined();
  expect(response.status?.code).toBe(grpcStatus);
  const denied = response.denied_response ?? undefined;
  if (denied === undefined) throw new Error(`no denied_response in ${JSON.stringify(response)}`);
  expect(denied.status?.code).toBe(httpStatus);
  expect(headerValue(denied.headers, 'content-type')).toBe('application/json');
  expect(headerValue(denied.headers, 'cache-control')).toBe('no-store');
  return {
    ...denied,
    body: deniedBody(response),
    challenge: headerValue(denied.headers, 'www-authenticate'),
  };
}

function reasonLogged(sink: LogSink, requestId: string): unknown {
  const lines = sink.records().filter((r) => r['event'] === 'decision' && r['request_id'] === requestId);
  expect(lines).toHaveLength(1);
  return lines[0]?.['reason'];
}

describe('Authorization/Check over real gRPC (in-process server, JWKS over HTTP)', () => {
  let key: TestKey;
  let jwks: KeyServer;
  let authz: InProcessAuthz;
  let sink: LogSink;
  let server: RunningAuthzServer;
  let client: CheckClient;
  let viewToken: string;
  let counter = 0;

  const check = (init: Omit<HttpCheckInit, 'id'>) => {
    const id = `grpc-check-${++counter}`;
    return client.check(httpCheckRequest({ ...init, id })).then((response) => ({ response, id }));
  };

  beforeAll(async () => {
    key = await generateTestKey('main-key');
    jwks = await startKeyServer([key.publicJwk]);
    authz = await startInProcessAuthz({
      policy: policyYaml({ keys: { jwksUri: jwks.url } }),
      tempPrefix: 'authz-grpc-',
    });
    ({ sink, server, client } = authz);
    viewToken = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
  });

  afterAll(async () => {
    await authz?.stop();
    await jwks?.close();
  });

  it('binds a real port and logs a started line', () => {
    expect(server.port).toBeGreaterThan(0);
    const started = sink.records().filter((r) => r['event'] === 'started');
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ port: server.port, listen: '127.0.0.1:0' });
  });

  it('allows GET /balance with a view:balance token and passes the identity upstream', async () => {
    const { response, id } = await check({
      method: 'GET',
      path: '/balance',
      authorization: `Bearer ${viewToken}`,
    });
    const ok = expectAllowed(response);
    expect(headerValue(ok.headers, 'x-auth-subject')).toBe('alice');
    expect(headerValue(ok.headers, 'x-auth-scopes')).toBe('view:balance');
    expect(ok.headers).toHaveLength(2);
    expect(ok.headers_to_remove).toEqual([]);
    expect(reasonLogged(sink, id)).toBe('allowed');
  });

  it('passes every granted scope, space-separated, in x-auth-scopes', async () => {
    const token = await signTestToken(key, TOKEN_DEFAULTS, {
      claims: { scope: 'view:balance transfer:funds', sub: 'bob' },
    });
    const { response } = await check({ method: 'POST', path: '/transfer', authorization: `Bearer ${token}` });
    const ok = expectAllowed(response);
    expect(headerValue(ok.headers, 'x-auth-subject')).toBe('bob');
    expect(headerValue(ok.headers, 'x-auth-scopes')).toBe('view:balance transfer:funds');
  });

  it('allows the public /healthz without a token and removes both identity headers', async () => {
    for (const authorization of [undefined, 'Bearer not-even-a-jwt', 'Basic YWxpY2U6cHc=']) {
      const { response, id } = await check({
        method: 'GET',
        path: '/healthz',
        ...(authorization === undefined ? {} : { authorization }),
      });
      const ok = expectAllowed(response);
      expect(ok.headers).toEqual([]);
      expect([...ok.headers_to_remove].sort()).toEqual(['x-auth-scopes', 'x-auth-subject']);
      expect(reasonLogged(sink, id)).toBe('allowed');
    }
  });

  it('answers a request without credentials with 401 and a bare Bearer challenge', async () => {
    for (const authorization of [undefined, 'Basic YWxpY2U6cHc=']) {
      const { response, id } = await check({
        method: 'GET',
        path: '/balance',
        ...(authorization === undefined ? {} : { authorization }),
      });
      const denied = expectDenied(response, 401, GrpcStatus.UNAUTHENTICATED);
      expect(denied.challenge).toBe(BARE_CHALLENGE);
      expect(denied.body).toEqual({ error: 'unauthorized', error_description: 'a bearer token is required' });
      expect(reasonLogged(sink, id)).toBe('credentials_missing');
    }
  });

  it('answers POST /transfer with a view-only token with 403 insufficient_scope naming the route scope', async () => {
    const { response, id } = await check({
      method: 'POST',
      path: '/transfer',
      authorization: `Bearer ${viewToken}`,
    });
    const denied = expectDenied(response, 403, GrpcStatus.PERMISSION_DENIED);
    expect(denied.challenge).toBe(
      'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds"',
    );
    expect(denied.body['error']).toBe('insufficient_scope');
    expect(denied.body['error_description']).toBe('the token lacks a required scope: transfer:funds');
    expect(reasonLogged(sink, id)).toBe('insufficient_scope');
  });

  describe('tokens that do not validate get 401 invalid_token', () => {
    const cases: [string, () => Promise<string>, string][] = [
      [
        'expired',
        () => signTestToken(key, TOKEN_DEFAULTS, { now: Math.floor(Date.now() / 1000) - 3600 }),
        'token_expired',
      ],
      [
        'for another audience',
        () => signTestToken(key, TOKEN_DEFAULTS, { claims: { aud: 'https://other-api.example' } }),
        'token_audience_mismatch',
      ],
      [
        'tampered with (scope raised, signature kept)',
        async () => tamperWithPayload(await signTestToken(key, TOKEN_DEFAULTS)),
        'token_signature_invalid',
      ],
      [
        'unsigned (alg none)',
        async () =>
          unsecuredToken({
            iss: ISSUER,
            aud: AUDIENCE,
            sub: 'alice',
            scope: 'view:balance transfer:funds',
            exp: Math.floor(Date.now() / 1000) + 600,
          }),
        'token_algorithm_not_allowed',
      ],
      [
        'from an issuer the policy does not trust',
        () => signTestToken(key, { issuer: 'https://evil.example/', audience: AUDIENCE }),
        'token_issuer_unknown',
      ],
      ['not a JWT at all', async () => 'bm90LWEtand0', 'token_malformed'],
    ];

    it.each(cases)('%s', async (_name, makeToken, reason) => {
      const token = await makeToken();
      const { response, id } = await check({
        method: 'GET',
        path: '/balance',
        authorization: `Bearer ${token}`,
      });
      const denied = expectDenied(response, 401, GrpcStatus.UNAUTHENTICATED);
      expect(denied.challenge).toMatch(
        /^Bearer realm="bank-api", error="invalid_token", error_description="[^"]+"$/,
      );
      expect(denied.body['error']).toBe('invalid_token');
      expect(denied.body['error_description']).toEqual(expect.any(String));
      expect(response.denied_response?.body).not.toContain(token);
      expect(reasonLogged(sink, id)).toBe(reason);
    });
  });

  it('denies a request no route matches with 403 and no challenge', async () => {
    for (const [method, path] of [
      ['GET', '/admin'],
      ['DELETE', '/balance'],
      ['GET', '/transfer'],
      ['GET', '/accounts/42/balance/history'],
    ] as const) {
      const { response, id } = await check({ method, path, authorization: `Bearer ${viewToken}` });
      const denied = expectDenied(response, 403, GrpcStatus.PERMISSION_DENIED);
      expect(denied.challenge).toBeUndefined();
      expect(denied.body['error']).toBe('access_denied');
      expect(reasonLogged(sink, id)).toBe('no_route');
    }
  });

  it('ignores the query string when matching routes', async () => {
    const allowed = await check({
      method: 'GET',
      path: '/balance?x=/transfer',
      authorization: `Bearer ${viewToken}`,
    });
    expectAllowed(allowed.response);

    // The query cannot borrow another route's (weaker) requirements either.
    const transfer = await check({
      method: 'POST',
      path: '/transfer?next=/balance',
      authorization: `Bearer ${viewToken}`,
    });
    expectDenied(transfer.response, 403, GrpcStatus.PERMISSION_DENIED);
    expect(reasonLogged(sink, transfer.id)).toBe('insufficient_scope');
  });

  it('matches {id} to exactly one non-empty segment', async () => {
    const authorization = `Bearer ${viewToken}`;
    expectAllowed((await check({ method: 'GET', path: '/accounts/42/balance', authorization })).response);
    expectAllowed(
      (await check({ method: 'GET', path: '/accounts/acc-7/balance?x=/transfer', authorization })).response,
    );

    const anonymous = await check({ method: 'GET', path: '/accounts/42/balance' });
    expect(expectDenied(anonymous.response, 401, GrpcStatus.UNAUTHENTICATED).challenge).toBe(BARE_CHALLENGE);

    const deeper = await check({ method: 'GET', path: '/accounts/42/7/balance', authorization });
    expect(expectDenied(deeper.response, 403, GrpcStatus.PERMISSION_DENIED).body['error']).toBe(
      'access_denied',
    );

    const empty = await check({ method: 'GET', path: '/accounts//balance', authorization });
    const denied = expectDenied(empty.response, 400, GrpcStatus.INVALID_ARGUMENT);
    expect(denied.challenge).toBeUndefined();
    expect(denied.body['error']).toBe('invalid_request');
    expect(reasonLogged(sink, empty.id)).toBe('path_invalid');
  });

  it('lets any valid token through a route with an empty scope list', async () => {
    const noScopes = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: undefined } });
    const { response } = await check({
      method: 'GET',
      path: '/profile',
      authorization: `Bearer ${noScopes}`,
    });
    const ok = expectAllowed(response);
    expect(headerValue(ok.headers, 'x-auth-subject')).toBe('alice');
    // No scopes to state: the client's copy is removed rather than set empty.
    expect(headerValue(ok.headers, 'x-auth-scopes')).toBeUndefined();
    expect(ok.headers_to_remove).toEqual(['x-auth-scopes']);

    // A JWT access token names its subject (RFC 9068 section 2.2): without sub it is refused (the issuer's
    // require_sub, true by default).
    const noSubject = await signTestToken(key, TOKEN_DEFAULTS, { claims: { sub: undefined } });
    const anonymous = await check({ method: 'GET', path: '/profile', authorization: `Bearer ${noSubject}` });
    expect(expectDenied(anonymous.response, 401, GrpcStatus.UNAUTHENTICATED).body['error']).toBe(
      'invalid_token',
    );

    // ... but a token is still required, and it must still validate.
    const none = await check({ method: 'GET', path: '/profile' });
    expectDenied(none.response, 401, GrpcStatus.UNAUTHENTICATED);
    const expired = await signTestToken(key, TOKEN_DEFAULTS, { now: Math.floor(Date.now() / 1000) - 3600 });
    const stale = await check({ method: 'GET', path: '/profile', authorization: `Bearer ${expired}` });
    expect(expectDenied(stale.response, 401, GrpcStatus.UNAUTHENTICATED).body['error']).toBe('invalid_token');
  });

  describe('header_map (encode_raw_headers: one entry per header line, values as raw_value bytes)', () => {
    const rawRequest = (id: string, authorizations: readonly string[]) => ({
      attributes: {
        request: {
          http: {
            id,
            method: 'GET',
            path: '/balance',
            host: 'bank.example',
            header_map: {
              headers: [
                { key: ':authority', raw_value: Buffer.from('bank.example') },
                { key: ':path', raw_value: Buffer.from('/balance') },
                { key: ':method', raw_value: Buffer.from('GET') },
                ...authorizations.map((value) => ({ key: 'authorization', raw_value: Buffer.from(value) })),
                { key: 'x-request-id', raw_value: Buffer.from(id) },
              ],
            },
          },
        },
      },
    });

    it('reads a single Authorization header from raw_value', async () => {
      const response = await client.check(rawRequest('raw-one', [`Bearer ${viewToken}`]));
      expect(headerValue(expectAllowed(response).headers, 'x-auth-subject')).toBe('alice');
    });

    it('refuses two Authorization headers with 400 invalid_request', async () => {
      const other = await signTestToken(key, TOKEN_DEFAULTS, { claims: { sub: 'mallory' } });
      const response = await client.check(rawRequest('raw-two', [`Bearer ${viewToken}`, `Bearer ${other}`]));
      const denied = expectDenied(response, 400, GrpcStatus.INVALID_ARGUMENT);
      expect(denied.challenge).toBe(
        'Bearer realm="bank-api", error="invalid_request", error_description="more than one Authorization header"',
      );
      expect(denied.body['error']).toBe('invalid_request');
      expect(reasonLogged(sink, 'raw-two')).toBe('credentials_malformed');
    });

    it('also refuses two Authorization headers that Envoy joined with a comma in the headers map', async () => {
      const { response } = await check({
        method: 'GET',
        path: '/balance',
        authorization: `Bearer ${viewToken},Bearer ${viewToken}`,
      });
      expect(expectDenied(response, 400, GrpcStatus.INVALID_ARGUMENT).body['error']).toBe('invalid_request');
    });
  });

  it('answers a malformed CheckRequest with a denial, not a crash', async () => {
    for (const request of [{}, { attributes: {} }, { attributes: { request: {} } }]) {
      const response = await client.check(request);
      const denied = expectDenied(response, 400, GrpcStatus.INVALID_ARGUMENT);
      expect(denied.body['error']).toBe('invalid_request');
    }
    // Still serving.
    expectAllowed(
      (await check({ method: 'GET', path: '/balance', authorization: `Bearer ${viewToken}` })).response,
    );
    expect(sink.records().filter((r) => r['event'] === 'check_failed')).toEqual([]);
  });

  it('answers bytes that are not a CheckRequest with a gRPC error, and keeps serving', async () => {
    const raw = new Client(`127.0.0.1:${server.port}`, credentials.createInsecure());
    try {
      const error = await new Promise<ServiceError | null>((resolve) => {
        raw.makeUnaryRequest(
          '/envoy.service.auth.v3.Authorization/Check',
          (bytes: Buffer) => bytes,
          (bytes: Buffer) => bytes,
          Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), // field 1, a length far beyond the message
          { deadline: Date.now() + 5000 },
          (failure) => resolve(failure),
        );
      });
      expect(error?.code).toBe(GrpcStatus.INTERNAL);
    } finally {
      raw.close();
    }
    expectAllowed(
      (await check({ method: 'GET', path: '/balance', authorization: `Bearer ${viewToken}` })).response,
    );
  });

  it('serves gRPC health: SERVING for "" and for the Authorization service', async () => {
    const health = connectHealthClient(server.port);
    try {
      expect(await health.check('')).toEqual({ status: 'SERVING' });
      expect(await health.check(AUTHORIZATION_SERVICE)).toEqual({ status: 'SERVING' });
      expect(AUTHORIZATION_SERVICE).toBe('envoy.service.auth.v3.Authorization');
      const unknown = await health.check('no.such.Service').then(
        () => undefined,
        (error: ServiceError) => error,
      );
      expect(unknown?.code).toBe(GrpcStatus.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  it('fetched the key set once for all of the above', () => {
    expect(jwks.requests).toBe(1);
  });
});

/**
 * A clock that stands still at the real time it was created and moves only when the test says so: the
 * key cache's cooldowns then never depend on how fast the machine is, and real-time tokens stay valid.
 */
function manualClock() {
  let current = Date.now();
  return {
    now: () => current,
    advance: (ms: number) => {
      current += ms;
    },
  };
}

describe('issuer keys over HTTP: outage and rotation', () => {
  const cleanups: (() => Promise<void> | void)[] = [];

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function startWith(jwks: KeyServer, now: () => number, settings: Record<string, string> = {}) {
    const { sink, client, stop } = await startInProcessAuthz({
      policy: policyYaml({ keys: { jwksUri: jwks.url }, issuerSettings: settings }),
      tempPrefix: 'authz-keys-',
      now,
    });
    cleanups.push(stop);
    const balance = (token: string) =>
      client.check(httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` }));
    return { sink, balance };
  }

  it('answers 503 while no keys can be fetched and none are cached, without hammering the issuer', async () => {
    const key = await generateTestKey('outage-key');
    const jwks = await startKeyServer([key.publicJwk]);
    cleanups.push(() => jwks.close());
    jwks.behave('http-500'); // failing from the very start: nothing is ever cached
    const clock = manualClock();
    const { sink, balance } = await startWith(jwks, clock.now);
    const token = await signTestToken(key, TOKEN_DEFAULTS);

    for (let i = 0; i < 3; i += 1) {
      const denied = expectDenied(await balance(token), 503, GrpcStatus.UNAVAILABLE);
      expect(denied.challenge).toBeUndefined();
      expect(denied.body['error']).toBe('temporarily_unavailable');
    }
    expect(jwks.requests).toBe(1); // the start-up prefetch; failures are retried at most every 5 s
    const decisions = sink.records().filter((r) => r['event'] === 'decision');
    expect(decisions.map((r) => r['reason'])).toEqual([
      'keys_unavailable',
      'keys_unavailable',
      'keys_unavailable',
    ]);
    expect(sink.records().some((r) => r['event'] === 'jwks_fetch' && r['outcome'] === 'error')).toBe(true);

    // Recovery, without waiting: the injected clock moves past the 5 s retry bound.
    jwks.behave('keys');
    clock.advance(6000);
    expectAllowed(await balance(token));
    expect(jwks.requests).toBe(2);
  });

  it('keeps using cached keys when a refresh after jwks_cache_ttl fails', async () => {
    const key = await generateTestKey('stale-key');
    const jwks = await startKeyServer([key.publicJwk]);
    cleanups.push(() => jwks.close());
    const clock = manualClock();
    const { sink, balance } = await startWith(jwks, clock.now, {
      jwks_cache_ttl: '60s',
      jwks_refresh_cooldown: '30s',
    });
    const token = await signTestToken(key, TOKEN_DEFAULTS);
    expectAllowed(await balance(token));
    expect(jwks.requests).toBe(1);

    jwks.behave('http-503');
    clock.advance(61_000); // the cached set has expired: the next request refreshes it, and that fails
    expectAllowed(await balance(token)); // answered with the keys held: the refresh runs off the request path
    // So the refresh may reach the issuer after the answer: wait for it to have ended, failed.
    await waitUntil(
      () => sink.records().filter((r) => r['event'] === 'jwks_fetch' && r['outcome'] === 'error').length,
      (failed) => failed === 1,
      { timeoutMs: 10_000, what: 'the failed refresh' },
    );
    expect(jwks.requests).toBe(2);
    expectAllowed(await balance(token)); // within the cooldown of that failure: no new attempt
    expect(jwks.requests).toBe(2);
  });

  it('accepts a rotated key after exactly one refetch, and refetches for unknown kids at most once per cooldown', async () => {
    const oldKey = await generateTestKey('rotation-old');
    const newKey = await generateTestKey('rotation-new');
    const strangerKey = await generateTestKey('rotation-unknown');
    const jwks = await startKeyServer([oldKey.publicJwk]);
    cleanups.push(() => jwks.close());
    const clock = manualClock();
    const { balance } = await startWith(jwks, clock.now, { jwks_refresh_cooldown: '30s' });

    expectAllowed(await balance(await signTestToken(oldKey, TOKEN_DEFAULTS)));
    expect(jwks.requests).toBe(1);

    // The issuer rotates: the new key is published and tokens start carrying its kid.
    jwks.publish([oldKey.publicJwk, newKey.publicJwk]);
    clock.advance(31_000); // past the refresh cooldown
    const rotated = await signTestToken(newKey, TOKEN_DEFAULTS);
    expectAllowed(await balance(rotated));
    expect(jwks.requests).toBe(2); // exactly one extra fetch
    expectAllowed(await balance(rotated));
    expectAllowed(await balance(await signTestToken(oldKey, TOKEN_DEFAULTS)));
    expect(jwks.requests).toBe(2); // both keys now cached

    // A token whose kid the issuer never published, sent again and again: within the cooldown that
    // follows the rotation fetch, no refetch at all.
    const stranger = await signTestToken(strangerKey, TOKEN_DEFAULTS);
    for (let i = 0; i < 5; i += 1) {
      const denied = expectDenied(await balance(stranger), 401, GrpcStatus.UNAUTHENTICATED);
      expect(denied.body['error']).toBe('invalid_token');
    }
    expect(jwks.requests).toBe(2);

    // Past the cooldown: one refetch for the first of many (here concurrent) requests, then none.
    clock.advance(31_000);
    const answers = await Promise.all(Array.from({ length: 5 }, () => balance(stranger)));
    for (const answer of answers) expectDenied(answer, 401, GrpcStatus.UNAUTHENTICATED);
    for (let i = 0; i < 5; i += 1) expectDenied(await balance(stranger), 401, GrpcStatus.UNAUTHENTICATED);
    expect(jwks.requests).toBe(3);
    expectAllowed(await balance(rotated)); // the cached keys were kept throughout
  });
});

describe('server lifecycle', () => {
  it('refuses an invalid policy with PolicyError and never listens', async () => {
    const temp = await createTempDir('authz-bad-policy-');
    try {
      const text = policyYaml({ keys: { jwksUri: 'http://127.0.0.1:9/jwks.json' } }).replace(
        'methods: [POST]',
        'methods: [post]',
      );
      const policyFile = await writeTextFile(temp.dir, 'policy.yaml', text);
      const port = await freePort();
      const sink = createLogSink();
      const error = await startAuthzServer({
        policyFile,
        listen: `127.0.0.1:${port}`,
        logger: sink.logger,
      }).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      expect(error).toBeInstanceOf(PolicyError);
      expect((error as PolicyError).code).toBe('ERR_POLICY_INVALID');
      expect((error as PolicyError).problems).toEqual([
        expect.objectContaining({ file: policyFile, line: 10, path: 'routes[1].methods[0]' }),
      ]);
      expect(await canBind(port)).toBe(true); // nothing took the port
      expect(sink.records().filter((r) => r['event'] === 'started')).toEqual([]);

      const missingKeys = await writeTextFile(
        temp.dir,
        'missing-keys.yaml',
        policyYaml({ keys: { jwksFile: 'no-such-dir/jwks.json' } }),
      );
      await expect(
        startAuthzServer({ policyFile: missingKeys, listen: `127.0.0.1:${port}`, logger: sink.logger }),
      ).rejects.toBeInstanceOf(PolicyError);
      expect(await canBind(port)).toBe(true);
    } finally {
      await temp.remove();
    }
  });

  it('rejects when the address is already in use', async () => {
    const key = await generateTestKey('busy-key');
    const jwks = await startKeyServer([key.publicJwk]);
    const temp = await createTempDir('authz-busy-');
    const sink = createLogSink();
    const policyFile = await writeTextFile(
      temp.dir,
      'policy.yaml',
      policyYaml({ keys: { jwksUri: jwks.url } }),
    );
    const first = await startAuthzServer({ policyFile, listen: '127.0.0.1:0', logger: sink.logger });
    try {
      await expect(
        startAuthzServer({ policyFile, listen: `127.0.0.1:${first.port}`, logger: sink.logger }),
      ).rejects.toThrow(`cannot listen on 127.0.0.1:${first.port}`);
      expect(sink.records().filter((r) => r['event'] === 'started')).toHaveLength(1);
    } finally {
      await first.close({ graceMs: 1000 });
      await jwks.close();
      await temp.remove();
    }
  });

  it('close() ends gracefully with a client still connected (no forced shutdown), and the server then refuses calls', async () => {
    const key = await generateTestKey('close-key');
    const jwks = await startKeyServer([key.publicJwk]);
    const temp = await createTempDir('authz-close-');
    const client = { current: undefined as CheckClient | undefined };
    try {
      const policyFile = await writeTextFile(
        temp.dir,
        'policy.yaml',
        policyYaml({ keys: { jwksUri: jwks.url } }),
      );
      const sink = createLogSink();
      const server = await startAuthzServer({ policyFile, listen: '127.0.0.1:0', logger: sink.logger });
      client.current = connectCheckClient(server.port);
      const token = await signTestToken(key, TOKEN_DEFAULTS);
      const request = httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` });
      expectAllowed(await client.current.check(request));

      await expect(server.close({ graceMs: 5000 })).resolves.toBeUndefined();
      // Graceful: the idle connection did not hold the server until the grace period forced it shut.
      const events = sink.records().map((record) => record['event']);
      expect(events).not.toContain('shutdown_forced');
      expect(events.at(-1)).toBe('stopped');

      const after = await client.current.check(request).then(
        () => undefined,
        (error: ServiceError) => error,
      );
      expect(after?.code).toBe(GrpcStatus.UNAVAILABLE);
    } finally {
      client.current?.close();
      await jwks.close();
      await temp.remove();
    }
  });
});
