import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  generateTestKey,
  signTestToken,
  startJwksServer,
  tamperWithPayload,
  unsecuredToken,
  type JwksServer,
  type TestKey,
} from '../support/test-issuer.js';
import { rawRequest } from '../support/raw-http.js';
import { startCli, type RunningCli } from './cli-process.js';
import { repoRoot } from './envoy-binary.js';
import { freePorts, startEnvoy, type RunningEnvoy } from './envoy-process.js';

// The whole path a client sees: real Envoy (envoy/envoy.yaml, ports changed only) -> ext_authz over gRPC
// (`authz serve`, the built CLI) -> the stub bank (`authz bank`). Tokens come from this suite's own issuer,
// whose key set is served over HTTP; the routes are the repo's demo policy.yaml, unchanged.

const ISSUER = 'https://issuer.e2e.test/';
const AUDIENCE = 'https://my-banking-api';
const DOWN_ISSUER = 'https://down.e2e.test/';
const TRANSFER_CHALLENGE = 'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds"';

let envoy: RunningEnvoy;
let authz: RunningCli;
let bank: RunningCli;
let jwks: JwksServer;
let downJwks: JwksServer;
let key: TestKey;
let base: string;
const tokensUsed: string[] = [];

async function token(
  options: Parameters<typeof signTestToken>[2] = {},
  signer: TestKey = key,
): Promise<string> {
  const jwt = await signTestToken(signer, { issuer: ISSUER, audience: AUDIENCE }, options);
  tokensUsed.push(jwt);
  return jwt;
}

/** Login claims of a recent multi-factor login, as the demo /transfer route requires (RFC 9470). */
function mfaLogin(ageSeconds = 30): Record<string, unknown> {
  return { acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'], auth_time: Math.floor(Date.now() / 1000) - ageSeconds };
}

function bearer(jwt: string): Record<string, string> {
  return { authorization: `Bearer ${jwt}` };
}

async function call(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const response = await fetch(`${base}${target}`, init);
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: response.status, headers: response.headers, json };
}

beforeAll(async () => {
  key = await generateTestKey('e2e-key-1');
  jwks = await startJwksServer([key.publicJwk]);
  downJwks = await startJwksServer([]);
  downJwks.failWith(500);

  const dir = await mkdtemp(path.join(tmpdir(), 'authz-e2e-'));
  const demo = parse(await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8')) as Record<string, unknown>;
  const policy = {
    ...demo,
    issuers: [
      { issuer: ISSUER, audiences: [AUDIENCE], jwks_uri: jwks.url, algorithms: ['RS256'] },
      { issuer: DOWN_ISSUER, audiences: [AUDIENCE], jwks_uri: downJwks.url, algorithms: ['RS256'] },
    ],
  };
  const policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(policy));

  const [listen, admin, authzPort, bankPort] = await freePorts(4);
  authz = await startCli(['serve', '--policy', policyFile, '--listen', `127.0.0.1:${authzPort}`]);
  bank = await startCli(['bank', '--listen', `127.0.0.1:${bankPort}`]);
  envoy = await startEnvoy({ listen: listen!, admin: admin!, authz: authzPort!, bank: bankPort! });
  base = envoy.baseUrl;
});

afterAll(async () => {
  await envoy?.stop();
  await Promise.all([authz?.stop(), bank?.stop()]);
  await Promise.all([jwks?.close(), downJwks?.close()]);
});

describe('the step-up scenario through real Envoy', () => {
  it('lets the liveness probe through without a token', async () => {
    const response = await call('GET', '/healthz');
    expect(response.status).toBe(200);
  });

  it('answers 401 with a bare Bearer challenge when there is no token', async () => {
    const response = await call('GET', '/balance');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="bank-api"');
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.json).toEqual({ error: 'unauthorized', error_description: 'a bearer token is required' });
  });

  it('shows the balance to a token with view:balance', async () => {
    const response = await call('GET', '/balance', bearer(await token({ claims: { sub: 'alice' } })));
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ account: 'alice', balance: 1000 });
  });

  it('refuses a transfer with 403 insufficient_scope and moves no money', async () => {
    const view = await token({ claims: { sub: 'alice', scope: 'view:balance' } });
    const response = await call('POST', '/transfer', bearer(view), { to: 'bob', amount: 25 });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBe(TRANSFER_CHALLENGE);
    expect(response.json['error']).toBe('insufficient_scope');
    expect((await call('GET', '/balance', bearer(view))).json).toEqual({ account: 'alice', balance: 1000 });
  });

  it('transfers with a transfer:funds token (201) and the balances move', async () => {
    const stepped = await token({
      claims: { sub: 'alice', scope: 'view:balance transfer:funds', ...mfaLogin() },
    });
    const response = await call('POST', '/transfer', bearer(stepped), { to: 'bob', amount: 25 });
    expect(response.status).toBe(201);
    expect(response.json).toEqual({ from: 'alice', to: 'bob', amount: 25, balance: 975 });
    expect((await call('GET', '/balance', bearer(stepped))).json).toEqual({ account: 'alice', balance: 975 });
    const bob = await token({ claims: { sub: 'bob' } });
    expect((await call('GET', '/balance', bearer(bob))).json).toEqual({ account: 'bob', balance: 1025 });
  });

  it('shows /accounts/{id}/balance to the account owner only', async () => {
    const view = await token({ claims: { sub: 'alice' } });
    expect((await call('GET', '/accounts/alice/balance', bearer(view))).status).toBe(200);
    expect((await call('GET', '/accounts/bob/balance', bearer(view))).status).toBe(403);
  });

  it('answers 400 and changes nothing when the transfer body is bad', async () => {
    const stepped = await token({
      claims: { sub: 'carol', scope: 'view:balance transfer:funds', ...mfaLogin() },
    });
    for (const body of [{ to: 'bob', amount: -5 }, { to: 'bob', amount: '25' }, { amount: 25 }, [1, 2]]) {
      expect((await call('POST', '/transfer', bearer(stepped), body)).status).toBe(400);
    }
    expect((await call('GET', '/balance', bearer(stepped))).json).toEqual({
      account: 'carol',
      balance: 1000,
    });
  });
});

describe('step-up: the login behind a token with the right scope (RFC 9470)', () => {
  const transferWith = async (login: Record<string, unknown>) =>
    call(
      'POST',
      '/transfer',
      bearer(await token({ claims: { sub: 'erin', scope: 'transfer:funds', ...login } })),
      {
        to: 'bob',
        amount: 5,
      },
    );

  it('answers 401 insufficient_user_authentication with acr_values for a login without MFA', async () => {
    const response = await transferWith({
      acr: 'urn:bank:pwd',
      amr: ['pwd'],
      auth_time: Math.floor(Date.now() / 1000),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(
      'Bearer realm="bank-api", error="insufficient_user_authentication", ' +
        'error_description="a stronger authentication is required", acr_values="urn:bank:mfa"',
    );
    expect(response.json['error']).toBe('insufficient_user_authentication');
  });

  it('answers 401 with max_age for an MFA login older than the route allows', async () => {
    const response = await transferWith(mfaLogin(3600));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(
      'Bearer realm="bank-api", error="insufficient_user_authentication", ' +
        'error_description="the authentication must be at most 600 seconds old", max_age="600"',
    );
  });

  it('moves no money on either refusal', async () => {
    const erin = await token({ claims: { sub: 'erin' } });
    expect((await call('GET', '/balance', bearer(erin))).json).toEqual({ account: 'erin', balance: 1000 });
  });
});

describe('tokens that do not validate are 401 invalid_token', () => {
  const now = () => Math.floor(Date.now() / 1000);
  it.each([
    ['expired', () => token({ now: now() - 7200 })],
    ['for another audience', () => token({ claims: { aud: 'https://another-api' } })],
    ['tampered with', async () => tamperWithPayload(await token())],
    [
      'unsigned (alg: none)',
      async () => unsecuredToken({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: now() + 600 }),
    ],
    ['from an untrusted issuer', () => token({ claims: { iss: 'https://evil.example/' } })],
    ['signed by an unknown key', async () => token({}, await generateTestKey('not-published'))],
    ['without exp', () => token({ claims: { exp: undefined } })],
    ['not yet valid', () => token({ claims: { nbf: now() + 3600 } })],
  ])('refuses a token %s', async (_name, make) => {
    const jwt = await make();
    tokensUsed.push(jwt);
    const response = await call('GET', '/balance', bearer(jwt));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(
      /^Bearer realm="bank-api", error="invalid_token", error_description="[^"]+"$/,
    );
    expect(response.json['error']).toBe('invalid_token');
    expect(JSON.stringify(response.json)).not.toContain(jwt);
  });
});

describe('requests that are refused before any token is checked', () => {
  it('denies a route the policy does not list with 403 and no challenge', async () => {
    const response = await call('GET', '/admin', bearer(await token()));
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBeNull();
    expect(response.json['error']).toBe('access_denied');
  });

  it('does not take a token from the query string', async () => {
    const jwt = await token();
    const response = await call('GET', `/balance?access_token=${jwt}`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="bank-api"');
  });

  it.each([
    ['Bearer with no token', 'Bearer'],
    ['a token with spaces', 'Bearer abc def'],
  ])('answers 400 invalid_request for %s', async (_name, authorization) => {
    const response = await call('GET', '/balance', { authorization });
    expect(response.status).toBe(400);
    expect(response.headers.get('www-authenticate')).toMatch(
      /^Bearer realm="bank-api", error="invalid_request", error_description="[^"]+"$/,
    );
  });

  it('answers 400 invalid_request for two Authorization headers', async () => {
    const jwt = await token();
    const response = await rawRequest(base, '/balance', {
      headers: { authorization: [`Bearer ${jwt}`, `Bearer ${jwt}`] },
    });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_request' });
  });

  it('answers 503 when the issuer keys cannot be fetched and none are cached', async () => {
    const jwt = await signTestToken(key, { issuer: DOWN_ISSUER, audience: AUDIENCE });
    tokensUsed.push(jwt);
    const response = await call('GET', '/balance', bearer(jwt));
    expect(response.status).toBe(503);
    expect(response.json['error']).toBe('temporarily_unavailable');
  });
});

describe('identity headers for the upstream', () => {
  it('replaces client-sent x-auth-subject and x-auth-scopes with the verified ones', async () => {
    const jwt = await token({ claims: { sub: 'dave' } });
    const response = await rawRequest(base, '/balance', {
      headers: {
        authorization: `Bearer ${jwt}`,
        'x-auth-subject': ['mallory', 'eve'],
        'x-auth-scopes': 'transfer:funds',
      },
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ account: 'dave', balance: 1000 });
  });

  it('removes a client-sent x-auth-subject when the token has no sub', async () => {
    const jwt = await token({ claims: { sub: undefined } });
    const response = await call('GET', '/balance', { ...bearer(jwt), 'x-auth-subject': 'mallory' });
    // The bank sees no subject at all, so it refuses: the spoofed one never arrives.
    expect(response.status).toBe(401);
    expect(response.json['error']).toBe('unauthenticated');
  });
});

describe('decision logs', () => {
  it('logs one structured line per decision and never a token', async () => {
    const lines = authz.logLines().filter((line) => line['event'] === 'decision');
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      expect(line).toMatchObject({
        decision: expect.any(String),
        status: expect.any(Number),
        reason: expect.any(String),
      });
      expect(String(line['path'])).not.toContain('?');
    }
    const output = authz.output();
    for (const jwt of tokensUsed) {
      expect(output).not.toContain(jwt);
      expect(output).not.toContain(jwt.split('.')[2] || jwt);
    }
  });
});

describe('failing closed', () => {
  it('answers 503 when the authz service is gone', async () => {
    expect(await authz.stop()).toBe(0);
    const response = await call('GET', '/balance', bearer(await token()));
    expect(response.status).toBe(503);
    const health = await call('GET', '/healthz');
    expect(health.status).toBe(200);
  });
});
