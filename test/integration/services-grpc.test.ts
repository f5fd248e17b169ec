import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OVERWRITE_IF_EXISTS_OR_ADD } from '../../src/envoy/check-messages.js';
import {
  AUDIENCE,
  deniedBody,
  headerValue,
  ISSUER,
  TOKEN_DEFAULTS,
  type CheckResponseView,
  type HttpCheckInit,
} from '../kit/authz-harness.js';
import { servicesPolicyText } from '../kit/inline-policy.js';
import { startPolicyServer, type PolicyServer } from '../kit/policy-server.js';
import { generateTestKey, signTestToken } from '../kit/tokens.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';

/*
 * Two services behind one sidecar, over real gRPC (the production server in this process, keys over HTTP):
 * the bank and a statements API, both with a GET /balance, each with its own host, realm, audience and
 * scope. A CheckRequest carries the host in `attributes.request.http.host` and may name the service in
 * `attributes.context_extensions`, as Envoy sends them.
 */

const STATEMENTS_AUDIENCE = 'https://statements-api';

let jwks: KeyServer;
let authz: PolicyServer;
let bankToken: string;
let statementsToken: string;

beforeAll(async () => {
  const key = await generateTestKey('services-key');
  jwks = await startKeyServer([key.publicJwk]);
  authz = await startPolicyServer({
    policy: servicesPolicyText({
      issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwksUri: jwks.url }],
      services: [
        {
          name: 'bank',
          hosts: ['bank.example'],
          realm: 'bank-api',
          routes: [
            '{ methods: [GET], path: /balance, scopes: [view:balance] }',
            '{ path: /healthz, public: true }',
          ],
        },
        {
          name: 'statements',
          hosts: ['statements.example', '*.statements.example'],
          realm: 'statements-api',
          issuers: [{ issuer: ISSUER, audiences: [STATEMENTS_AUDIENCE] }],
          claimHeaders: { email: 'x-auth-email' },
          routes: [
            '{ methods: [GET], path: /balance, scopes: [view:statements] }',
            "{ methods: [GET], path: '/statements/**', scopes: [view:statements] }",
          ],
        },
      ],
    }),
  });
  bankToken = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
  statementsToken = await signTestToken(
    key,
    { issuer: ISSUER, audience: STATEMENTS_AUDIENCE },
    { claims: { scope: 'view:statements', email: 'alice@example.com' } },
  );
});

afterAll(async () => {
  await authz?.stop();
  await jwks?.close();
});

/** Sends one Check; resolves with the answer, its decision log line and what the metrics recorded. */
async function check(init: Omit<HttpCheckInit, 'id'>) {
  const before = authz.metrics.decisions.length;
  const { response, id } = await authz.check(init);
  const recorded = authz.metrics.decisions.slice(before).map(({ durationSeconds: _, ...labels }) => labels);
  expect(recorded).toHaveLength(1);
  return { response, line: authz.decisionLine(id), metrics: recorded[0]! };
}

function okResponse(response: CheckResponseView) {
  expect(response.status?.code).toBe(GrpcStatus.OK);
  const ok = response.ok_response ?? undefined;
  if (ok === undefined) throw new Error(`not an allow: ${JSON.stringify(response)}`);
  return ok;
}

function deniedResponse(response: CheckResponseView) {
  const denied = response.denied_response ?? undefined;
  if (denied === undefined) throw new Error(`not a denial: ${JSON.stringify(response)}`);
  return {
    status: denied.status?.code,
    challenge: headerValue(denied.headers, 'www-authenticate'),
    body: deniedBody(response),
  };
}

describe('services over gRPC: the host chooses', () => {
  it('allows a bank token on the bank host, and logs and counts the decision under the service bank', async () => {
    const { response, line, metrics } = await check({
      method: 'GET',
      path: '/balance',
      host: 'bank.example',
      authorization: `Bearer ${bankToken}`,
    });

    expect(headerValue(okResponse(response).headers, 'x-auth-subject')).toBe('alice');
    expect(line).toMatchObject({
      service: 'authz',
      policy_service: 'bank',
      route: 'GET /balance',
      decision: 'allow',
      status: 200,
    });
    expect(metrics).toEqual({ service: 'bank', route: 'GET /balance', outcome: 'allow', reason: 'allowed' });
  });

  it("refuses the same token on the statements host's GET /balance: 401 in the statements realm", async () => {
    const { response, line, metrics } = await check({
      method: 'GET',
      path: '/balance',
      host: 'statements.example',
      authorization: `Bearer ${bankToken}`,
    });

    expect(response.status?.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(deniedResponse(response)).toEqual({
      status: 401,
      challenge:
        'Bearer realm="statements-api", error="invalid_token", error_description="the token is not meant for this API"',
      body: { error: 'invalid_token', error_description: 'the token is not meant for this API' },
    });
    expect(line).toMatchObject({
      service: 'authz',
      policy_service: 'statements',
      reason: 'token_audience_mismatch',
      status: 401,
    });
    expect(metrics).toEqual({
      service: 'statements',
      route: 'GET /balance',
      outcome: 'deny',
      reason: 'token_audience_mismatch',
    });
  });

  it.each(['Statements.Example', 'statements.example:8443', 'statements.example.', 'eu.statements.example'])(
    'finds statements for the host %j',
    async (host) => {
      const { response, line } = await check({
        method: 'GET',
        path: '/statements/2026',
        host,
        authorization: `Bearer ${statementsToken}`,
      });

      okResponse(response);
      expect(line).toMatchObject({
        service: 'authz',
        policy_service: 'statements',
        route: 'GET /statements/**',
      });
    },
  );

  it('passes the email claim to the statements upstream as x-auth-email, overwriting any client copy', async () => {
    const { response } = await check({
      method: 'GET',
      path: '/statements/2026',
      host: 'statements.example',
      authorization: `Bearer ${statementsToken}`,
    });
    const ok = okResponse(response);

    expect(headerValue(ok.headers, 'x-auth-email')).toBe('alice@example.com');
    expect(ok.headers.find((option) => option.header?.key === 'x-auth-email')?.append_action).toBe(
      OVERWRITE_IF_EXISTS_OR_ADD,
    );
    expect(ok.headers_to_remove).toEqual([]);
  });

  it('challenges a request without a token in the realm of its service', async () => {
    const onBank = await check({ method: 'GET', path: '/balance', host: 'bank.example' });
    const onStatements = await check({ method: 'GET', path: '/balance', host: 'statements.example' });

    expect(deniedResponse(onBank.response).challenge).toBe('Bearer realm="bank-api"');
    expect(deniedResponse(onStatements.response).challenge).toBe('Bearer realm="statements-api"');
  });

  it('denies a host no service claims: 403 no_service, no challenge, logged with policy_service null', async () => {
    const { response, line, metrics } = await check({
      method: 'GET',
      path: '/balance',
      host: 'shop.example',
      authorization: `Bearer ${bankToken}`,
    });

    expect(response.status?.code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect(deniedResponse(response)).toEqual({
      status: 403,
      challenge: undefined,
      body: { error: 'access_denied', error_description: 'no service answers for this host' },
    });
    expect(line).toMatchObject({
      service: 'authz',
      policy_service: null,
      route: null,
      reason: 'no_service',
      status: 403,
    });
    expect(metrics).toEqual({ service: '(none)', route: '(none)', outcome: 'deny', reason: 'no_service' });
  });
});

describe('services over gRPC: the decision log line', () => {
  it('names the policy service in policy_service, leaving the process field service as it is, each key once', async () => {
    const { id } = await authz.check({ method: 'GET', path: '/healthz', host: 'bank.example' });
    const [raw] = authz.sink.lines().filter((text) => text.includes(`"request_id":"${id}"`));

    // A duplicate key would be read differently by different log pipelines (last wins, first wins, refused).
    expect(raw?.match(/"service":/g)).toHaveLength(1);
    expect(raw?.match(/"policy_service":/g)).toHaveLength(1);
    expect(authz.decisionLine(id)).toMatchObject({ service: 'authz', policy_service: 'bank' });
  });
});

describe('services over gRPC: the name Envoy gives (context_extensions) chooses first', () => {
  it('decides a request to the bank host by the statements service when the route names it', async () => {
    const { response, line, metrics } = await check({
      method: 'GET',
      path: '/balance',
      host: 'bank.example',
      contextExtensions: { service: 'statements', virtual_host: 'bank' },
      authorization: `Bearer ${statementsToken}`,
    });

    okResponse(response);
    expect(line).toMatchObject({ service: 'authz', policy_service: 'statements', route: 'GET /balance' });
    expect(metrics).toMatchObject({ service: 'statements', outcome: 'allow' });
  });

  it('denies a name the policy does not have: 403 service_unknown, no challenge, logged with policy_service null and the name given', async () => {
    const { response, line, metrics } = await check({
      method: 'GET',
      path: '/balance',
      host: 'bank.example',
      contextExtensions: { service: 'no-such-service' },
      authorization: `Bearer ${bankToken}`,
    });

    expect(deniedResponse(response)).toEqual({
      status: 403,
      challenge: undefined,
      body: {
        error: 'access_denied',
        error_description: 'the proxy named a service this policy does not have',
      },
    });
    expect(line).toMatchObject({
      service: 'authz',
      policy_service: null,
      service_requested: 'no-such-service',
      reason: 'service_unknown',
    });
    expect(metrics).toMatchObject({ service: '(none)', reason: 'service_unknown' });
  });

  it('ignores context_extensions that name no service (other keys, an empty name)', async () => {
    const { line } = await check({
      method: 'GET',
      path: '/balance',
      host: 'bank.example',
      contextExtensions: { service: '', virtual_host: 'statements' },
      authorization: `Bearer ${bankToken}`,
    });

    expect(line).toMatchObject({ service: 'authz', policy_service: 'bank', decision: 'allow' });
  });
});
