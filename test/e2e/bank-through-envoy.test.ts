import { request, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpopProof, generateDpopKey, type DpopKey } from '../kit/dpop-proofs.js';
import {
  generateTestKey,
  tamperWithPayload,
  unsecuredToken,
  type TestKey,
  type TokenOptions,
} from '../kit/tokens.js';
import { startServedIssuer, type ServedIssuer } from '../kit/served-issuer.js';
import { rawRequest } from '../kit/raw-http.js';
import { writeDemoPolicy } from '../kit/demo-policy.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';

// The whole path a client sees: real Envoy (envoy/envoy.yaml, ports changed only) -> ext_authz over gRPC
// (`authz serve`, the built CLI) -> the stub bank (`authz bank`). Tokens come from this suite's own issuer,
// whose key set is served over HTTP; the routes and sender constraints are the repo's demo policy.yaml,
// unchanged, with public_origin set to this run's Envoy (a DPoP proof's htu names the origin the client
// called, RFC 9449 section 4.3). The demo accepts DPoP (RFC 9449) everywhere and requires it for
// POST /transfer: every transfer here is made with a DPoP-bound token (cnf.jkt) and a fresh proof of its
// key, and a route that accepts both schemes challenges with both, each on its own WWW-Authenticate line.

const ISSUER = 'https://issuer.e2e.test/';
const AUDIENCE = 'https://my-banking-api';
const DOWN_ISSUER = 'https://down.e2e.test/';
/** The DPoP challenge's algs: dpop.algorithms at its default, as the demo policy leaves it. */
const ALGS = 'ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA Ed25519';
/** The bare challenges of a route that accepts both schemes (GET /balance): one line each. */
const BEARER_CHALLENGE = 'Bearer realm="bank-api"';
const DPOP_CHALLENGE = `DPoP realm="bank-api", algs="${ALGS}"`;
/** POST /transfer requires DPoP: its only challenge is under DPoP. */
const TRANSFER_CHALLENGE =
  'DPoP realm="bank-api", error="insufficient_scope", scope="transfer:funds", ' + `algs="${ALGS}"`;

let stack: EnvoyStack;
let issuer: ServedIssuer;
/** An issuer whose key set endpoint answers 500 to every request. */
let downIssuer: ServedIssuer;
let base: string;
/** The client's DPoP key (ES256), and a thief's. */
let holder: DpopKey;
let thief: DpopKey;
const tokensUsed: string[] = [];

async function token(options: TokenOptions = {}, signer?: TestKey): Promise<string> {
  const jwt = await issuer.token(options, signer);
  tokensUsed.push(jwt);
  return jwt;
}

/** Login claims of a recent multi-factor login, as the demo /transfer route requires (RFC 9470). */
function mfaLogin(ageSeconds = 30): Record<string, unknown> {
  return { acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'], auth_time: Math.floor(Date.now() / 1000) - ageSeconds };
}

/** The claims that bind a token to `dpopKey` (RFC 9449 section 6.1). */
function boundTo(dpopKey: DpopKey = holder): Record<string, unknown> {
  return { cnf: { jkt: dpopKey.jkt } };
}

function bearer(jwt: string): Record<string, string> {
  return { authorization: `Bearer ${jwt}` };
}

/**
 * `Authorization: DPoP <token>` and a fresh proof from `dpopKey` (default: the holder's) for `method` and
 * `target` on this Envoy's origin (RFC 9449 section 7.1): a new proof each time, as a proof is single-use.
 */
async function dpop(
  method: string,
  target: string,
  jwt: string,
  dpopKey: DpopKey = holder,
): Promise<Record<string, string>> {
  const proof = await dpopProof(dpopKey, { method, url: `${base}${target}`, accessToken: jwt });
  return { authorization: `DPoP ${jwt}`, dpop: proof };
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Each `WWW-Authenticate` line on its own, in order (Node's `headers` joins them with commas). */
  readonly challenges: readonly string[];
  readonly json: Record<string, unknown>;
}

/** One request through Envoy on a fresh connection; `body` is sent as JSON. */
async function call(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  const { hostname, port } = new URL(base);
  const sent: Record<string, string> = { ...headers };
  const text = body === undefined ? undefined : JSON.stringify(body);
  if (text !== undefined) {
    sent['content-type'] = 'application/json';
    sent['content-length'] = String(Buffer.byteLength(text));
  }
  const answer = await new Promise<Omit<Answer, 'json'> & { text: string }>((resolve, reject) => {
    const req = request(
      { host: hostname, port, method, path: target, headers: sent, agent: false },
      (res) => {
        let received = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (received += chunk));
        const challenges = res.rawHeaders.filter(
          (_value, index, raw) => index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'www-authenticate',
        );
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, challenges, text: received }),
        );
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${target} timed out`)));
    req.on('error', reject);
    req.end(text);
  });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(answer.text) as Record<string, unknown>;
  } catch {
    json = { raw: answer.text };
  }
  return { status: answer.status, headers: answer.headers, challenges: answer.challenges, json };
}

beforeAll(async () => {
  issuer = await startServedIssuer('e2e-key-1', { issuer: ISSUER, audience: AUDIENCE });
  [holder, thief] = await Promise.all([generateDpopKey('ES256'), generateDpopKey('ES256')]);
  downIssuer = await startServedIssuer('down-key', { issuer: DOWN_ISSUER, audience: AUDIENCE });
  downIssuer.jwks.behave('http-500');

  stack = await startEnvoyStack({
    policyFile: ({ origin }) =>
      writeDemoPolicy({ public_origin: origin, issuers: [issuer.policyEntry(), downIssuer.policyEntry()] }),
  });
  base = stack.envoy.baseUrl;
});

afterAll(async () => {
  await stack?.stop();
  await Promise.all([issuer?.close(), downIssuer?.close()]);
});

describe('the step-up scenario through real Envoy', () => {
  it('lets the liveness probe through without a token', async () => {
    const response = await call('GET', '/healthz');
    expect(response.status).toBe(200);
  });

  it('answers 401 with a bare Bearer and a bare DPoP challenge when there is no token', async () => {
    const response = await call('GET', '/balance');
    expect(response.status).toBe(401);
    expect(response.challenges).toEqual([BEARER_CHALLENGE, DPOP_CHALLENGE]);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.json).toEqual({ error: 'unauthorized', error_description: 'a bearer token is required' });
  });

  it('answers 401 with the DPoP challenge alone on POST /transfer, which requires DPoP', async () => {
    const response = await call('POST', '/transfer', {}, { to: 'bob', amount: 25 });
    expect(response.status).toBe(401);
    expect(response.challenges).toEqual([DPOP_CHALLENGE]);
    expect(response.json['error']).toBe('unauthorized');
  });

  it('shows the balance to a token with view:balance', async () => {
    const response = await call('GET', '/balance', bearer(await token({ claims: { sub: 'alice' } })));
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ account: 'alice', balance: 1000 });
  });

  it('shows the balance to a DPoP-bound token with its proof', async () => {
    const bound = await token({ claims: { sub: 'alice', ...boundTo() } });
    const response = await call('GET', '/balance', await dpop('GET', '/balance', bound));
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ account: 'alice', balance: 1000 });
  });

  it('refuses a transfer with 403 insufficient_scope and moves no money', async () => {
    const view = await token({ claims: { sub: 'alice', scope: 'view:balance', ...boundTo() } });
    const response = await call('POST', '/transfer', await dpop('POST', '/transfer', view), {
      to: 'bob',
      amount: 25,
    });
    expect(response.status).toBe(403);
    expect(response.challenges).toEqual([TRANSFER_CHALLENGE]);
    expect(response.json['error']).toBe('insufficient_scope');
    expect((await call('GET', '/balance', await dpop('GET', '/balance', view))).json).toEqual({
      account: 'alice',
      balance: 1000,
    });
  });

  it('transfers with a DPoP-bound transfer:funds token and a proof (201) and the balances move', async () => {
    const stepped = await token({
      claims: { sub: 'alice', scope: 'view:balance transfer:funds', ...mfaLogin(), ...boundTo() },
    });
    const response = await call('POST', '/transfer', await dpop('POST', '/transfer', stepped), {
      to: 'bob',
      amount: 25,
    });
    expect(response.status).toBe(201);
    expect(response.json).toEqual({ from: 'alice', to: 'bob', amount: 25, balance: 975 });
    expect((await call('GET', '/balance', await dpop('GET', '/balance', stepped))).json).toEqual({
      account: 'alice',
      balance: 975,
    });
    const bob = await token({ claims: { sub: 'bob' } });
    expect((await call('GET', '/balance', bearer(bob))).json).toEqual({ account: 'bob', balance: 1025 });
  });

  it('refuses a transfer:funds token without its DPoP key (401) and moves no money', async () => {
    const claims = { sub: 'frank', scope: 'view:balance transfer:funds', ...mfaLogin() };
    const body = { to: 'bob', amount: 25 };
    const invalidToken = (description: string) =>
      `DPoP realm="bank-api", error="invalid_token", error_description="${description}", algs="${ALGS}"`;

    // A bearer token, valid in every other way: /transfer takes only DPoP-bound tokens.
    const unbound = await token({ claims });
    const asBearer = await call('POST', '/transfer', bearer(unbound), body);
    expect(asBearer.status).toBe(401);
    expect(asBearer.challenges).toEqual([invalidToken('this API requires a DPoP-bound token here')]);
    expect(asBearer.json['error']).toBe('invalid_token');

    // frank's bound token in a thief's hands: sent as Bearer, or with a proof of the thief's key.
    const stolen = await token({ claims: { ...claims, ...boundTo() } });
    const stolenAsBearer = await call('POST', '/transfer', bearer(stolen), body);
    expect(stolenAsBearer.status).toBe(401);
    expect(stolenAsBearer.challenges).toHaveLength(1);
    expect(stolenAsBearer.challenges[0]).toMatch(
      new RegExp(`^DPoP realm="bank-api", error="invalid_token", error_description="[^"]+", algs="${ALGS}"$`),
    );
    const thiefsProof = await call('POST', '/transfer', await dpop('POST', '/transfer', stolen, thief), body);
    expect(thiefsProof.status).toBe(401);
    expect(thiefsProof.challenges).toHaveLength(1);
    expect(thiefsProof.challenges[0]).toMatch(
      new RegExp(`^DPoP realm="bank-api", error="invalid_token", error_description="[^"]+", algs="${ALGS}"$`),
    );

    const frank = await token({ claims: { sub: 'frank' } });
    expect((await call('GET', '/balance', bearer(frank))).json).toEqual({ account: 'frank', balance: 1000 });
  });

  it('shows /accounts/{id}/balance to the account owner only', async () => {
    const view = await token({ claims: { sub: 'alice' } });
    expect((await call('GET', '/accounts/alice/balance', bearer(view))).status).toBe(200);
    expect((await call('GET', '/accounts/bob/balance', bearer(view))).status).toBe(403);
  });

  it('answers 400 and changes nothing when the transfer body is bad', async () => {
    const stepped = await token({
      claims: { sub: 'carol', scope: 'view:balance transfer:funds', ...mfaLogin(), ...boundTo() },
    });
    for (const body of [{ to: 'bob', amount: -5 }, { to: 'bob', amount: '25' }, { amount: 25 }, [1, 2]]) {
      expect((await call('POST', '/transfer', await dpop('POST', '/transfer', stepped), body)).status).toBe(
        400,
      );
    }
    expect((await call('GET', '/balance', await dpop('GET', '/balance', stepped))).json).toEqual({
      account: 'carol',
      balance: 1000,
    });
  });
});

describe('step-up: the login behind a token with the right scope (RFC 9470)', () => {
  const transferWith = async (login: Record<string, unknown>) => {
    const jwt = await token({ claims: { sub: 'erin', scope: 'transfer:funds', ...login, ...boundTo() } });
    return call('POST', '/transfer', await dpop('POST', '/transfer', jwt), { to: 'bob', amount: 5 });
  };

  it('answers 401 insufficient_user_authentication with acr_values for a login without MFA', async () => {
    const response = await transferWith({
      acr: 'urn:bank:pwd',
      amr: ['pwd'],
      auth_time: Math.floor(Date.now() / 1000),
    });
    expect(response.status).toBe(401);
    expect(response.challenges).toEqual([
      'DPoP realm="bank-api", error="insufficient_user_authentication", ' +
        'error_description="a stronger authentication is required", acr_values="urn:bank:mfa", ' +
        `algs="${ALGS}"`,
    ]);
    expect(response.json['error']).toBe('insufficient_user_authentication');
  });

  it('answers 401 with max_age for an MFA login older than the route allows', async () => {
    const response = await transferWith(mfaLogin(3600));
    expect(response.status).toBe(401);
    expect(response.challenges).toEqual([
      'DPoP realm="bank-api", error="insufficient_user_authentication", ' +
        'error_description="the authentication must be at most 600 seconds old", max_age="600", ' +
        `algs="${ALGS}"`,
    ]);
  });

  it('moves no money on either refusal', async () => {
    const erin = await token({ claims: { sub: 'erin' } });
    expect((await call('GET', '/balance', bearer(erin))).json).toEqual({ account: 'erin', balance: 1000 });
  });
});

describe('tokens that do not validate are 401 invalid_token', () => {
  const now = () => Math.floor(Date.now() / 1000);
  /** Each bad token, made with `claims` merged in (a binding, the scope and login of a transfer). */
  const cases: Array<[string, (claims: Record<string, unknown>) => Promise<string>]> = [
    ['expired', (claims) => token({ now: now() - 7200, claims })],
    ['for another audience', (claims) => token({ claims: { ...claims, aud: 'https://another-api' } })],
    // A view:balance token whose payload now claims transfer:funds too: the signature no longer matches.
    [
      'tampered with',
      async (claims) => tamperWithPayload(await token({ claims: { ...claims, scope: 'view:balance' } })),
    ],
    [
      'unsigned (alg: none)',
      async (claims) =>
        unsecuredToken({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: now() + 600, ...claims }),
    ],
    ['from an untrusted issuer', (claims) => token({ claims: { ...claims, iss: 'https://evil.example/' } })],
    ['signed by an unknown key', async (claims) => token({ claims }, await generateTestKey('not-published'))],
    ['without exp', (claims) => token({ claims: { ...claims, exp: undefined } })],
    ['not yet valid', (claims) => token({ claims: { ...claims, nbf: now() + 3600 } })],
  ];

  it.each(cases)('refuses a token %s as Bearer on GET /balance', async (_name, make) => {
    const jwt = await make({});
    tokensUsed.push(jwt);
    const response = await call('GET', '/balance', bearer(jwt));
    expect(response.status).toBe(401);
    expect(response.challenges).toHaveLength(2);
    expect(response.challenges[0]).toMatch(
      /^Bearer realm="bank-api", error="invalid_token", error_description="[^"]+"$/,
    );
    expect(response.challenges[1]).toBe(DPOP_CHALLENGE);
    expect(response.json['error']).toBe('invalid_token');
    expect(JSON.stringify(response.json)).not.toContain(jwt);
  });

  it.each(cases)(
    'refuses a DPoP-bound transfer token %s on POST /transfer, with a valid proof of its key',
    async (_name, make) => {
      const jwt = await make({
        sub: 'grace',
        scope: 'view:balance transfer:funds',
        ...mfaLogin(),
        ...boundTo(),
      });
      tokensUsed.push(jwt);
      const response = await call('POST', '/transfer', await dpop('POST', '/transfer', jwt), {
        to: 'bob',
        amount: 5,
      });
      expect(response.status).toBe(401);
      expect(response.challenges).toHaveLength(1);
      expect(response.challenges[0]).toMatch(
        new RegExp(
          `^DPoP realm="bank-api", error="invalid_token", error_description="[^"]+", algs="${ALGS}"$`,
        ),
      );
      expect(response.json['error']).toBe('invalid_token');
      expect(JSON.stringify(response.json)).not.toContain(jwt);
    },
  );

  it('moved no money for any of them', async () => {
    const grace = await token({ claims: { sub: 'grace' } });
    expect((await call('GET', '/balance', bearer(grace))).json).toEqual({ account: 'grace', balance: 1000 });
  });
});

describe('requests that are refused before any token is checked', () => {
  it('denies a route the policy does not list with 403 and no challenge', async () => {
    const response = await call('GET', '/admin', bearer(await token()));
    expect(response.status).toBe(403);
    expect(response.challenges).toEqual([]);
    expect(response.json['error']).toBe('access_denied');
  });

  it('does not take a token from the query string', async () => {
    const jwt = await token();
    const response = await call('GET', `/balance?access_token=${jwt}`);
    expect(response.status).toBe(401);
    expect(response.challenges).toEqual([BEARER_CHALLENGE, DPOP_CHALLENGE]);
  });

  it.each([
    ['Bearer with no token', 'Bearer'],
    ['a token with spaces', 'Bearer abc def'],
  ])('answers 400 invalid_request for %s', async (_name, authorization) => {
    const response = await call('GET', '/balance', { authorization });
    expect(response.status).toBe(400);
    expect(response.challenges).toHaveLength(2);
    expect(response.challenges[0]).toMatch(
      /^Bearer realm="bank-api", error="invalid_request", error_description="[^"]+"$/,
    );
    expect(response.challenges[1]).toBe(DPOP_CHALLENGE);
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
    // Signed with the main key: the down issuer's key set is never served.
    const jwt = await downIssuer.token({}, issuer.key);
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

  it('refuses a token without sub (RFC 9068 section 2.2): a client-sent x-auth-subject never arrives', async () => {
    const jwt = await token({ claims: { sub: undefined } });
    const response = await call('GET', '/balance', { ...bearer(jwt), 'x-auth-subject': 'mallory' });
    // authz refuses it (invalid_token), before the bank could see anything.
    expect(response.status).toBe(401);
    expect(response.json['error']).toBe('invalid_token');
  });
});

describe('decision logs', () => {
  it('logs one structured line per decision and never a token', async () => {
    const lines = stack.authz.logLines().filter((line) => line['event'] === 'decision');
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      expect(line).toMatchObject({
        decision: expect.any(String),
        status: expect.any(Number),
        reason: expect.any(String),
      });
      expect(String(line['path'])).not.toContain('?');
    }
    const output = stack.authz.output();
    for (const jwt of tokensUsed) {
      expect(output).not.toContain(jwt);
      expect(output).not.toContain(jwt.split('.')[2] || jwt);
    }
  });
});

describe('failing closed', () => {
  it('answers 503 when the authz service is gone', async () => {
    expect((await stack.authz.stop()).code).toBe(0);
    const response = await call('GET', '/balance', bearer(await token()));
    expect(response.status).toBe(503);
    const health = await call('GET', '/healthz');
    expect(health.status).toBe(200);
  });
});
