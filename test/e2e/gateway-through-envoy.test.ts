import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { IDENTITY_HEADERS } from '../../src/contract/identity-headers.js';
import { rawRequest } from '../kit/raw-http.js';
import { startServedIssuer, type ServedIssuer } from '../kit/served-issuer.js';
import { envoyBinary, type StartedEnvoy } from '../kit/envoy.js';
import { shippedConfig, startGateway, type StartedGateway, type YamlMap } from '../kit/gateway-config.js';
import { repoRoot, type KitProcess } from '../kit/process.js';

// Several services behind one Envoy: real Envoy running envoy/gateway.yaml (ports changed, plus two
// test-only virtual hosts, below) -> `authz serve` with the repo's policy.gateway.yaml, its services and
// routes unchanged, trusting this suite's issuer -> `authz bank` and `authz statements`, the built CLI.

const ISSUER = 'https://issuer.gateway-e2e.test/';
const BANK_AUDIENCE = 'https://my-banking-api';
const STATEMENTS_AUDIENCE = 'https://statements-api';
const BANK = 'bank.example';
const STATEMENTS = 'statements.example';
/** Routed by the test config with the statements virtual host's routes; claimed by no service. */
const ALIAS = 'alias.example';
/** Routed by the test config with `context_extensions: {service: no-such-service}`. */
const MYSTERY = 'mystery.example';
const UNKNOWN_SERVICE = 'no-such-service';
/** Every spoofed header value carries this, so a copy that got through shows in the answer. */
const SPOOF = 'spoofed';

let gateway: StartedGateway;
let envoy: StartedEnvoy;
/** Envoy's listener, `http://127.0.0.1:PORT`. */
let baseUrl: string;
let authz: KitProcess;
let issuer: ServedIssuer;
const tokensUsed: string[] = [];

async function token(claims: Record<string, unknown>): Promise<string> {
  const jwt = await issuer.token({ claims });
  tokensUsed.push(jwt);
  return jwt;
}

const bankToken = (scope = 'view:balance', claims: Record<string, unknown> = {}) =>
  token({ scope, ...claims });
const statementsToken = (scope = 'view:statements', claims: Record<string, unknown> = {}) =>
  token({ aud: STATEMENTS_AUDIENCE, scope, ...claims });

interface Answer {
  readonly status: number;
  /** WWW-Authenticate, or null. */
  readonly challenge: string | null;
  /** x-e2e-host: the host as Envoy holds it when the answer leaves (upstream answers only). */
  readonly host: string | undefined;
  /** x-e2e-virtual-host: the virtual host Envoy routed by (upstream answers only). */
  readonly virtualHost: string | undefined;
  readonly json: Record<string, unknown>;
}

/** `GET target` through Envoy with this Host header line, a bearer token if given, and extra header lines. */
async function get(
  host: string,
  target: string,
  jwt?: string,
  headers: Record<string, string | string[]> = {},
): Promise<Answer> {
  const answer = await rawRequest(baseUrl, target, {
    headers: { host, ...(jwt === undefined ? {} : { authorization: `Bearer ${jwt}` }), ...headers },
  });
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(answer.body) as Record<string, unknown>;
  } catch {
    json = { raw: answer.body };
  }
  const header = (name: string) => {
    const value = answer.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    status: answer.status,
    challenge: header('www-authenticate') ?? null,
    host: header('x-e2e-host'),
    virtualHost: header('x-e2e-virtual-host'),
    json,
  };
}

function decisionLines(): Record<string, unknown>[] {
  return authz.logLines().filter((line) => line['event'] === 'decision');
}

/**
 * The decision line whose fields include `fields` (a subject or a path only one request used). Envoy
 * replaces a client's x-request-id at the edge, so that cannot tie a request to its line.
 */
async function decisionFor(fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  const matches = (line: Record<string, unknown>) =>
    Object.entries(fields).every(([name, value]) => line[name] === value);
  // Decision lines are written within 100 ms; a loaded machine may take longer to hand them over.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    const found = decisionLines().filter(matches);
    if (found.length === 1) return found[0]!;
    if (found.length > 1) throw new Error(`${found.length} decision lines match ${JSON.stringify(fields)}`);
    await delay(50);
  }
  throw new Error(`no decision line has ${JSON.stringify(fields)}:\n${authz.output().slice(-4_000)}`);
}

let subjectCount = 0;
/** A subject no other request of this suite uses, so its decision line can be found. */
function uniqueSubject(): string {
  return `user-${++subjectCount}`;
}

beforeAll(async () => {
  issuer = await startServedIssuer('gateway-e2e-key', { issuer: ISSUER, audience: BANK_AUDIENCE });
  const policyFile = await writeGatewayPolicyTrusting({ issuer: ISSUER, jwksUri: issuer.jwks.url });

  gateway = await startGateway(policyFile, 'envoy (gateway.yaml)', testVirtualHosts);
  ({ envoy, baseUrl, authz } = gateway);
});

afterAll(async () => {
  await gateway?.stop();
  await issuer?.close();
});

describe('envoy/gateway.yaml and policy.gateway.yaml agree', () => {
  const gatewayFile = path.join(repoRoot, 'envoy', 'gateway.yaml');

  it('passes `envoy --mode validate` with the pinned Envoy, without a warning', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      envoyBinary(),
      ['--mode', 'validate', '-c', gatewayFile, '--log-level', 'warn'],
      { timeout: 20_000 },
    );
    expect(stdout + stderr).toContain(`configuration '${gatewayFile}' OK`);
    expect(stdout + stderr).not.toMatch(/\]\[(warning|error|critical)\]/);
  });

  it('routes exactly the hosts the services claim, and sends every other host through ext_authz', async () => {
    const { virtualHosts } = await shippedGateway();
    const policy = parse(await readFile(path.join(repoRoot, 'policy.gateway.yaml'), 'utf8')) as {
      services: Array<{ hosts?: string[] }>;
    };
    const domains = virtualHosts.flatMap((host) => host['domains'] as string[]);
    expect(domains.filter((domain) => domain !== '*').sort()).toEqual(
      policy.services.flatMap((service) => service.hosts ?? []).sort(),
    );
    const catchAll = virtualHosts.at(-1)!;
    expect(catchAll['domains']).toEqual(['*']);
    expect(JSON.stringify(catchAll)).not.toContain('disabled');
    for (const host of virtualHosts)
      expect(host['request_headers_to_remove'], String(host['name'])).toEqual(['authorization', 'dpop']);
  });

  it('removes client copies of every header the sidecar sets, identity and claim headers, before ext_authz', async () => {
    const { filters } = await shippedGateway();
    expect(filters.map((filter) => filter['name'])).toEqual([
      'envoy.filters.http.header_mutation',
      'envoy.filters.http.ext_authz',
      'envoy.filters.http.router',
    ]);
    const policy = parse(await readFile(path.join(repoRoot, 'policy.gateway.yaml'), 'utf8')) as {
      services: Array<{ claim_headers?: Record<string, string> }>;
    };
    const claimHeaders = policy.services.flatMap((service) => Object.values(service.claim_headers ?? {}));
    const removed = (
      ((filters[0]!['typed_config'] as YamlMap)['mutations'] as YamlMap)['request_mutations'] as Array<{
        remove: string;
      }>
    ).map((mutation) => mutation.remove);
    expect(removed.sort()).toEqual(
      [...new Set([...Object.values(IDENTITY_HEADERS), ...claimHeaders])].sort(),
    );
  });
});

describe('envoy/gateway.yaml and envoy/envoy.yaml agree', () => {
  it('traces as envoy/envoy.yaml does, to the same collector: one tracing setting for both', async () => {
    const [gateway, single] = await Promise.all([shippedConfig('gateway.yaml'), shippedConfig('envoy.yaml')]);
    expect(gateway.hcm['tracing']).toBeDefined();
    expect(gateway.hcm['tracing']).toEqual(single.hcm['tracing']);
    const collector = (config: { clusters: YamlMap[] }) =>
      config.clusters.find((cluster) => cluster['name'] === 'otel_collector');
    expect(collector(gateway)).toBeDefined();
    expect(collector(gateway)).toEqual(collector(single));
  });
});

describe('one path, two services: GET /balance by host', () => {
  it('shows the bank balance on bank.example to a bank token with view:balance', async () => {
    const answer = await get(BANK, '/balance', await bankToken('view:balance', { sub: 'alice' }));
    expect(answer.status, envoy.output()).toBe(200);
    expect(answer.json).toEqual({ account: 'alice', balance: 1000 });
    expect(answer.virtualHost).toBe('bank');
  });

  it('refuses that token on statements.example: another audience, so 401 invalid_token in its realm', async () => {
    const answer = await get(STATEMENTS, '/balance', await bankToken('view:balance'));
    expect(answer.status).toBe(401);
    expect(answer.challenge).toMatch(
      /^Bearer realm="statements-api", error="invalid_token", error_description="[^"]+"$/,
    );
  });

  it('refuses view:balance on statements.example even for its audience: 403 asking for view:statements', async () => {
    const both = await token({ aud: [BANK_AUDIENCE, STATEMENTS_AUDIENCE], scope: 'view:balance' });
    expect((await get(BANK, '/balance', both)).status).toBe(200);
    const answer = await get(STATEMENTS, '/balance', both);
    expect(answer.status).toBe(403);
    expect(answer.challenge).toBe(
      'Bearer realm="statements-api", error="insufficient_scope", scope="view:statements"',
    );
  });

  it('shows the statements balance on statements.example to a statements token with view:statements', async () => {
    const answer = await get(
      STATEMENTS,
      '/balance',
      await statementsToken('view:statements', { sub: 'bob' }),
    );
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ account: 'bob', statement: '2025-03', closing_balance: 1000 });
    expect(answer.virtualHost).toBe('statements');
  });

  it('refuses a statements token on bank.example with 401 invalid_token in the bank realm', async () => {
    const answer = await get(BANK, '/balance', await statementsToken('view:statements view:balance'));
    expect(answer.status).toBe(401);
    // The bank takes DPoP too (policy.gateway.yaml): a bare DPoP challenge follows the error under Bearer.
    expect(answer.challenge).toMatch(
      /^Bearer realm="bank-api", error="invalid_token", error_description="[^"]+", DPoP realm="bank-api", algs="[A-Za-z0-9 ]+"$/,
    );
  });

  it('challenges a request without a token in the realm of the host’s service', async () => {
    expect((await get(BANK, '/balance')).challenge).toBe(
      'Bearer realm="bank-api", DPoP realm="bank-api", algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA Ed25519"',
    );
    expect((await get(STATEMENTS, '/balance')).challenge).toBe('Bearer realm="statements-api"');
  });

  it('lets liveness probes through on both hosts without a token (ext_authz disabled on /healthz)', async () => {
    expect(await get(BANK, '/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(await get(STATEMENTS, '/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });
  });
});

describe('hosts no service claims', () => {
  it.each([
    ['another name', 'elsewhere.example'],
    ['a subdomain of a claimed name', `api.${BANK}`],
    ['an IP address', '127.0.0.1'],
  ])('answers 403 without a challenge for %s, even with a good token', async (_case, host) => {
    const answer = await get(host, '/balance', await bankToken());
    expect(answer.status).toBe(403);
    expect(answer.challenge).toBeNull();
    expect(answer.json['error']).toBe('access_denied');
  });

  it('answers 403 without a challenge when there is no token either', async () => {
    const answer = await get('elsewhere.example', '/balance');
    expect(answer.status).toBe(403);
    expect(answer.challenge).toBeNull();
  });
});

// What happens to each spelling of the bank's host, step by step (Envoy 1.40):
// - `BANK.EXAMPLE`: Envoy matches virtual host domains case-insensitively, so it routes to the bank, and
//   leaves the Host header as sent (the upstream gets `BANK.EXAMPLE`); the sidecar lower-cases the host
//   before matching services: bank.
// - `bank.example.`, `bank.example:8443`, `bank.example.:8443`, `bank.example:8443.`: before routing and
//   before any filter Envoy removes one trailing dot (also one before the port, and it does so first, so a
//   dot after the port goes too) and then the port (strip_trailing_host_dot, strip_any_host_port): the
//   route, the check and the upstream all see `bank.example`.
// - `bank.example:abc`: no port to Envoy, so no domain matches (catch-all virtual host); no host name to the
//   sidecar, so no service claims it: 403 without a challenge.
// - `bank.example..`: Envoy removes one dot and finds no domain for `bank.example.` (catch-all); the sidecar
//   removes another and sees `bank.example`, so the bank's rules decide; an allowed request then gets the
//   catch-all's own 404. No upstream is reached for a host Envoy and the sidecar read differently.
describe('spellings of a host', () => {
  it.each([
    ['upper case', 'BANK.EXAMPLE', 'BANK.EXAMPLE'],
    ['mixed case', 'Bank.Example', 'Bank.Example'],
    ['a trailing dot', 'bank.example.', 'bank.example'],
    ['a port', 'bank.example:8443', 'bank.example'],
    ['a trailing dot before the port', 'bank.example.:8443', 'bank.example'],
    ['a dot after the port', 'bank.example:8443.', 'bank.example'],
    ['a port and upper case', 'BANK.EXAMPLE:8443', 'BANK.EXAMPLE'],
  ])('treats %s (%s) as bank.example', async (_case, host, seenByEnvoy) => {
    const sub = uniqueSubject();
    const answer = await get(host, '/balance', await bankToken('view:balance', { sub }));
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ account: sub, balance: 1000 });
    expect(answer.virtualHost).toBe('bank');
    expect(answer.host).toBe(seenByEnvoy);
    expect(await decisionFor({ subject: sub })).toMatchObject({ policy_service: 'bank', status: 200 });
    // The same spelling of the statements host is the statements service: a bank token is not enough there.
    expect((await get(host.replace(/bank/i, 'statements'), '/balance', await bankToken())).challenge).toMatch(
      /^Bearer realm="statements-api", error="invalid_token"/,
    );
  });

  it('answers 403 without a challenge for a port that is not a number', async () => {
    const answer = await get('bank.example:abc', '/balance', await bankToken());
    expect(answer.status).toBe(403);
    expect(answer.challenge).toBeNull();
  });

  it('reaches no upstream for two trailing dots, which Envoy and the sidecar strip one each', async () => {
    const sub = uniqueSubject();
    const answer = await get('bank.example..', '/balance', await bankToken('view:balance', { sub }));
    expect(answer.status).toBe(404);
    expect(answer.virtualHost).toBe('unclaimed');
    expect(answer.json).toEqual({ raw: '' });
    expect(await decisionFor({ subject: sub })).toMatchObject({ policy_service: 'bank', status: 200 });
  });
});

describe('a route that names its service (ext_authz context_extensions)', () => {
  it('decides /statements/** on statements.example by the statements service', async () => {
    const sub = uniqueSubject();
    const answer = await get(
      STATEMENTS,
      '/statements/2025-02',
      await statementsToken('view:statements', { sub }),
    );
    expect(answer.status).toBe(200);
    expect(answer.json['statement']).toMatchObject({ id: '2025-02' });
    expect(await decisionFor({ subject: sub })).toMatchObject({ policy_service: 'statements', status: 200 });
  });

  it('decides by the named service on a host no service claims', async () => {
    // alias.example has the statements routes (test config): /statements names the service, /balance does not.
    const jwt = await statementsToken('view:statements', { sub: 'dave' });
    const named = await get(ALIAS, '/statements', jwt);
    expect(named.status).toBe(200);
    expect(named.json).toMatchObject({ account: 'dave' });
    expect((await get(ALIAS, '/statements')).challenge).toBe('Bearer realm="statements-api"');
    const unnamed = await get(ALIAS, '/balance', jwt);
    expect(unnamed.status).toBe(403);
    expect(unnamed.challenge).toBeNull();
  });

  it('answers 403 without a challenge for a service name the policy does not know, and logs it', async () => {
    const answer = await get(MYSTERY, '/mystery', await statementsToken());
    expect(answer.status).toBe(403);
    expect(answer.challenge).toBeNull();
    expect(await decisionFor({ path: '/mystery' })).toMatchObject({
      decision: 'deny',
      status: 403,
      reason: 'service_unknown',
      policy_service: null,
    });
  });
});

describe('headers the upstreams get', () => {
  /** Each header the sidecar sets, in three spellings and repeated, each with a spoofed value. */
  const spoofed = (): Record<string, string | string[]> =>
    Object.fromEntries(
      ['x-auth-subject', 'x-auth-scopes', 'x-auth-email'].flatMap((name) => [
        [name, [`${SPOOF}-mallory`, `${SPOOF}-eve`]],
        [name.toUpperCase(), `${SPOOF}-admin`],
        [name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()), SPOOF],
      ]),
    );

  it('the bank sees the verified subject, not the client’s', async () => {
    const answer = await get(BANK, '/balance', await bankToken('view:balance', { sub: 'erin' }), spoofed());
    expect(answer).toMatchObject({ status: 200, json: { account: 'erin', balance: 1000 } });
  });

  it('the statements service sees the verified subject and email (claim_headers), not the client’s', async () => {
    const jwt = await statementsToken('view:statements', { sub: 'frank', email: 'frank@example.com' });
    const answer = await get(STATEMENTS, '/statements', jwt, spoofed());
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ account: 'frank', email: 'frank@example.com' });
  });

  it('a client’s x-auth-email does not arrive when the token has no email claim', async () => {
    const jwt = await statementsToken('view:statements', { sub: 'grace' });
    const answer = await get(STATEMENTS, '/statements', jwt, spoofed());
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ account: 'grace', email: null });
  });

  it('a client’s x-auth-subject does not arrive with a token without sub: authz refuses the token (RFC 9068)', async () => {
    const jwt = await statementsToken('view:statements', { sub: undefined });
    const answer = await get(STATEMENTS, '/statements', jwt, spoofed());
    expect(answer).toMatchObject({ status: 401, json: { error: 'invalid_token' } });
  });
});

// The service is `policy_service` in decision lines: every line of the process already has `service: "authz"`.
describe('decision logs', () => {
  it('carry the policy service of every request (null when none was chosen), and never a token', async () => {
    const lines = decisionLines();
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.filter((line) => !('policy_service' in line))).toEqual([]);
    const services = new Set(lines.map((line) => line['policy_service']));
    expect(services).toEqual(new Set(['bank', 'statements', null]));
    const output = authz.output();
    for (const jwt of tokensUsed) expect(output).not.toContain(jwt.split('.')[2]!);
  });
});

/**
 * Writes the repo's policy.gateway.yaml with its services and routes untouched, trusting `issuer` instead
 * of the development issuers: at the top level with the bank's audience, and in each service with the
 * audiences that service gave its issuers.
 */
async function writeGatewayPolicyTrusting(trusted: { issuer: string; jwksUri: string }): Promise<string> {
  const shipped = parse(await readFile(path.join(repoRoot, 'policy.gateway.yaml'), 'utf8')) as {
    services: Array<Record<string, unknown>>;
  };
  const services = shipped.services.map((service) => {
    const issuers = service['issuers'] as Array<{ audiences?: string[] }> | undefined;
    if (issuers === undefined) return service;
    const audiences = [...new Set(issuers.flatMap((entry) => entry.audiences ?? []))];
    return { ...service, issuers: [{ issuer: trusted.issuer, audiences }] };
  });
  const policy = {
    ...shipped,
    issuers: [
      {
        issuer: trusted.issuer,
        audiences: [BANK_AUDIENCE],
        jwks_uri: trusted.jwksUri,
        algorithms: ['RS256'],
      },
    ],
    services,
  };
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'authz-gateway-e2e-')), 'policy.gateway.yaml');
  await writeFile(file, stringify(policy));
  return file;
}

/**
 * envoy/gateway.yaml for this test (gatewayConfigFor): and, before the catch-all, two virtual hosts only
 * the tests have: `alias.example` with the statements host's routes, and `mystery.example`, whose route
 * names a service the policy does not have.
 */
function testVirtualHosts(virtualHosts: readonly YamlMap[]): YamlMap[] {
  const statementsHost = virtualHosts.find((host) => host['name'] === 'statements');
  if (statementsHost === undefined) throw new Error('gateway.yaml: no virtual host named statements');
  const alias = { ...structuredClone(statementsHost), name: 'alias', domains: [ALIAS] };
  const mystery = {
    name: 'mystery',
    domains: [MYSTERY],
    request_headers_to_remove: ['authorization', 'dpop'],
    routes: [
      {
        match: { prefix: '/' },
        route: { cluster: 'statements' },
        typed_per_filter_config: {
          'envoy.filters.http.ext_authz': {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
            check_settings: { context_extensions: { service: UNKNOWN_SERVICE } },
          },
        },
      },
    ],
  };
  return [alias, mystery];
}

/** The shipped envoy/gateway.yaml's virtual hosts and HTTP filters. */
async function shippedGateway(): Promise<{ virtualHosts: YamlMap[]; filters: YamlMap[] }> {
  const { hcm } = await shippedConfig('gateway.yaml');
  return {
    virtualHosts: (hcm['route_config'] as YamlMap)['virtual_hosts'] as YamlMap[],
    filters: hcm['http_filters'] as YamlMap[],
  };
}
