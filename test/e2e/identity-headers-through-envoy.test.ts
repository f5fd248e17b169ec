import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { IDENTITY_HEADERS } from '../../src/contract/identity-headers.js';
import { dpopProof, generateDpopKey, type DpopKey } from '../kit/dpop-proofs.js';
import { startJwksServer, type JwksServer } from '../kit/test-issuer.js';
import { generateTestKey, signTestToken } from '../kit/tokens.js';
import { startCli, type RunningCli } from '../kit/cli-process.js';
import { repoRoot } from '../kit/envoy-binary.js';
import { freePorts, startEnvoy, type RunningEnvoy } from '../kit/envoy-process.js';

// The rule: the upstream only ever sees identity headers the sidecar set, and never the bearer token.
// Real Envoy (envoy/envoy.yaml, ports changed only) -> `authz serve` with the routes of the demo
// policy.yaml -> in place of the bank, an upstream that records every header line it receives, with the
// spelling and repeats it got off the wire. The demo policy requires DPoP (RFC 9449) on POST /transfer:
// transfers are sent with a DPoP-bound token and a fresh proof, its public_origin set to this Envoy.

const ISSUER = 'https://issuer.e2e.test/';
const AUDIENCE = 'https://my-banking-api';
const IDENTITY: readonly string[] = Object.values(IDENTITY_HEADERS);
/** Every value a client sends below carries this, so a copy that got through shows wherever it lands. */
const SPOOF = 'spoofed';
/** Ties a request to what the upstream received for it. */
const REQUEST_ID = 'x-e2e-request';

/** One request as the recording upstream received it. */
interface Received {
  readonly method: string;
  readonly url: string;
  /** Header lines in arrival order: [name, value], name as sent by Envoy. */
  readonly lines: ReadonlyArray<readonly [string, string]>;
}

let envoy: RunningEnvoy;
let authz: RunningCli;
let upstream: Server;
let jwks: JwksServer;
let token: (claims: Record<string, unknown>) => Promise<string>;
/** The client's DPoP key: transfer tokens are bound to it (cnf.jkt). */
let holder: DpopKey;
const received = new Map<string, Received>();
let requestCount = 0;

function titleCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** Every identity header in three spellings, repeated, each copy with a different spoofed value. */
function spoofedIdentity(): Array<[string, string]> {
  return IDENTITY.flatMap((name): Array<[string, string]> => [
    [name, `${SPOOF}-mallory`],
    [titleCase(name), `${SPOOF}-eve`],
    [name.toUpperCase(), `${SPOOF} admin transfer:funds view:balance`],
    [name, `alice, ${SPOOF}`],
  ]);
}

/** Login claims of a recent multi-factor login, as the demo /transfer route requires (RFC 9470). */
function mfaLogin(): Record<string, unknown> {
  return { acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'], auth_time: Math.floor(Date.now() / 1000) - 30 };
}

/**
 * Sends one HTTP/1.1 request through Envoy with the header lines exactly as given (spelling and repeats
 * kept: an array of lines, which Node sends as they are), and returns the status and what the upstream got.
 */
async function send(
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body?: string,
): Promise<{ status: number; upstream: Received | undefined }> {
  const id = String(++requestCount);
  const { host, hostname, port } = new URL(envoy.baseUrl);
  const lines: Array<readonly [string, string]> = [['Host', host], ...headers, [REQUEST_ID, id]];
  if (body !== undefined) {
    lines.push(['Content-Type', 'application/json'], ['Content-Length', String(Buffer.byteLength(body))]);
  }
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      { host: hostname, port, method, path: target, headers: lines.flat(), agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${target} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
  return { status, upstream: received.get(id) };
}

/**
 * The credentials for `method` `target` with a token of `claims`: under the DPoP scheme, bound to the
 * holder's key with a fresh proof, where the demo policy requires it (POST /transfer); else as Bearer.
 */
async function credentials(
  method: string,
  target: string,
  claims: Record<string, unknown>,
): Promise<Array<[string, string]>> {
  if (method !== 'POST' || target !== '/transfer')
    return [['Authorization', `Bearer ${await token(claims)}`]];
  const jwt = await token({ ...claims, cnf: { jkt: holder.jkt } });
  const proof = await dpopProof(holder, { method, url: `${envoy.baseUrl}${target}`, accessToken: jwt });
  return [
    ['Authorization', `DPoP ${jwt}`],
    ['DPoP', proof],
  ];
}

function byName(lines: Array<[string, string]>): Array<[string, string]> {
  return lines.sort(([a], [b]) => a.localeCompare(b));
}

/** The identity header lines the upstream received, names lower-cased, sorted by name. */
function identityLines(got: Received): Array<[string, string]> {
  return byName(
    got.lines
      .map(([name, value]): [string, string] => [name.toLowerCase(), value])
      .filter(([name]) => IDENTITY.includes(name)),
  );
}

/**
 * Checks (a) and (c) of the rule: no client copy of an identity header arrives, and no Authorization header
 * nor DPoP proof (envoy.yaml removes both; named only, so a failure does not print the token).
 */
function expectNothingFromTheClient(got: Received | undefined): asserts got is Received {
  expect(got, 'the request reached the upstream').toBeDefined();
  const lines = got!.lines.map(([name, value]) => `${name}: ${value}`);
  const named = (wanted: string) =>
    got!.lines.map(([name]) => name).filter((name) => name.toLowerCase() === wanted);
  expect({
    spoofed: lines.filter((line) => line.includes(SPOOF)),
    authorization: named('authorization'),
    dpop: named('dpop'),
  }).toEqual({ spoofed: [], authorization: [], dpop: [] });
}

beforeAll(async () => {
  const key = await generateTestKey('identity-e2e-key');
  jwks = await startJwksServer([key.publicJwk]);
  token = (claims) => signTestToken(key, { issuer: ISSUER, audience: AUDIENCE }, { claims });
  holder = await generateDpopKey('ES256');

  const [listen, admin, authzPort, upstreamPort] = (await freePorts(4)) as [number, number, number, number];
  const demo = parse(await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8')) as Record<string, unknown>;
  const policy = {
    ...demo,
    public_origin: `http://127.0.0.1:${listen}`,
    issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks_uri: jwks.url, algorithms: ['RS256'] }],
  };
  const policyFile = path.join(await mkdtemp(path.join(tmpdir(), 'authz-identity-e2e-')), 'policy.yaml');
  await writeFile(policyFile, stringify(policy));

  upstream = createServer((req, res) => {
    const lines: Array<[string, string]> = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
      lines.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    const id = req.headers[REQUEST_ID];
    if (typeof id === 'string') received.set(id, { method: req.method ?? '', url: req.url ?? '', lines });
    req.resume();
    req.on('end', () => res.end('recorded'));
  });
  await new Promise<void>((resolve) => upstream.listen(upstreamPort, '127.0.0.1', resolve));
  authz = await startCli(['serve', '--policy', policyFile, '--listen', `127.0.0.1:${authzPort}`]);
  envoy = await startEnvoy({ listen, admin, authz: authzPort, bank: upstreamPort });
});

afterAll(async () => {
  await envoy?.stop();
  await authz?.stop();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  await jwks?.close();
});

describe('on the protected routes of policy.yaml, the upstream gets exactly the sidecar’s identity headers', () => {
  it.each([
    { method: 'GET', target: '/balance', scope: 'view:balance', login: {} },
    { method: 'GET', target: '/accounts/alice/balance', scope: 'view:balance', login: {} },
    {
      method: 'POST',
      target: '/transfer',
      scope: 'view:balance transfer:funds',
      login: mfaLogin(),
      body: JSON.stringify({ to: 'bob', amount: 5 }),
    },
  ])('$method $target', async ({ method, target, scope, login, body }) => {
    const { status, upstream: got } = await send(
      method,
      target,
      [...(await credentials(method, target, { sub: 'alice', scope, ...login })), ...spoofedIdentity()],
      body,
    );
    expect(status, envoy.output()).toBe(200);
    expectNothingFromTheClient(got);
    expect(got.method).toBe(method);
    expect(identityLines(got)).toEqual(
      byName([
        [IDENTITY_HEADERS.subject, 'alice'],
        [IDENTITY_HEADERS.scopes, scope],
      ]),
    );
  });
});

describe('on routes the sidecar leaves public, no identity header arrives at all', () => {
  it.each([
    { method: 'GET', target: '/app/index.html' },
    { method: 'HEAD', target: '/app/' },
  ])('$method $target (public in policy.yaml)', async ({ method, target }) => {
    const jwt = await token({ sub: 'alice' });
    const { status, upstream: got } = await send(method, target, [
      ['Authorization', `Bearer ${jwt}`],
      ...spoofedIdentity(),
    ]);
    expect(status).toBe(200);
    expectNothingFromTheClient(got);
    expect(identityLines(got)).toEqual([]);
  });

  it('GET /healthz, where Envoy does not call ext_authz at all', async () => {
    const jwt = await token({ sub: 'alice' });
    const { status, upstream: got } = await send('GET', '/healthz', [
      ['Authorization', `Bearer ${jwt}`],
      ['authorization', 'Bearer a-second-token'],
      ...spoofedIdentity(),
    ]);
    expect(status).toBe(200);
    expectNothingFromTheClient(got);
    expect(got.url).toBe('/healthz');
    expect(identityLines(got)).toEqual([]);
  });
});

describe('refused requests', () => {
  it.each([
    { method: 'GET', target: '/balance', scope: undefined, status: 401 },
    { method: 'POST', target: '/transfer', scope: 'view:balance', status: 403 },
    // The scope without the multi-factor login the route asks for: a step-up challenge (RFC 9470).
    { method: 'POST', target: '/transfer', scope: 'transfer:funds', status: 401 },
  ])(
    'never reach the upstream: $method $target answers $status',
    async ({ method, target, scope, status }) => {
      const sent = scope === undefined ? [] : await credentials(method, target, { sub: 'alice', scope });
      const answer = await send(method, target, [...sent, ...spoofedIdentity()]);
      expect(answer.status).toBe(status);
      expect(answer.upstream).toBeUndefined();
    },
  );
});
