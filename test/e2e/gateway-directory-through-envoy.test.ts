import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startGateway, type StartedGateway } from '../kit/gateway-config.js';
import type { StartedEnvoy } from '../kit/envoy.js';
import { repoRoot, type KitProcess } from '../kit/process.js';
import { rawRequest } from '../kit/raw-http.js';
import { startServedIssuer, type ServedIssuer } from '../kit/served-issuer.js';
import { waitUntil } from '../kit/wait-until.js';

// The gateway with its policy as a directory, one file per team (docs/policy.md, "A policy directory"):
// real Envoy running envoy/gateway.yaml (ports changed) -> `authz serve --policy DIR`, DIR a copy of the
// repo's policy.gateway.d/ trusting this suite's issuer -> `authz bank` and `authz statements`, the built
// CLI. Then the teams edit their files as they would, and the answers through Envoy show each edit applied
// or refused alone.

const ISSUER = 'https://issuer.teams-e2e.test/';
const BANK_AUDIENCE = 'https://my-banking-api';
const STATEMENTS_AUDIENCE = 'https://statements-api';
/** A deadline for a reload on a loaded machine: the folder is watched and polled once a second. */
const EFFECT_DEADLINE_MS = 15_000;

let gateway: StartedGateway;
let envoy: StartedEnvoy;
let baseUrl: string;
let authz: KitProcess;
let issuer: ServedIssuer;
let dir: string;
let policyDir: string;

type YamlMap = Record<string, unknown>;

const bankToken = (scope = 'view:balance') => issuer.token({ claims: { scope } });
const statementsToken = () =>
  issuer.token({ claims: { aud: STATEMENTS_AUDIENCE, scope: 'view:statements', email: 'ada@example.com' } });

async function status(host: string, target: string, jwt?: string): Promise<number> {
  const answer = await rawRequest(baseUrl, target, {
    headers: { host, ...(jwt === undefined ? {} : { authorization: `Bearer ${jwt}` }) },
  });
  return answer.status;
}

async function becomes(host: string, target: string, jwt: string, expected: number): Promise<void> {
  await waitUntil(
    () => status(host, target, jwt),
    (got) => got === expected,
    { timeoutMs: EFFECT_DEADLINE_MS, what: `${host}${target} answered ${expected}` },
  );
}

/** A file of policy.gateway.d/ as YAML data. */
async function shipped(name: string): Promise<YamlMap> {
  return parse(await readFile(path.join(repoRoot, 'policy.gateway.d', name), 'utf8')) as YamlMap;
}

/** A service file of policy.gateway.d/, its services trusting this suite's issuer only. */
async function trustingOurIssuer(name: string): Promise<YamlMap> {
  const file = await shipped(name);
  const services = (file['services'] as YamlMap[]).map((service) => {
    const issuers = service['issuers'] as Array<{ audiences?: string[] }> | undefined;
    if (issuers === undefined) return service;
    const audiences = [...new Set(issuers.flatMap((entry) => entry.audiences ?? []))];
    return { ...service, issuers: [{ issuer: ISSUER, audiences }] };
  });
  return { ...file, services };
}

async function save(name: string, data: YamlMap | string): Promise<void> {
  await writeFile(path.join(policyDir, name), typeof data === 'string' ? data : stringify(data));
}

/** The reload lines `authz serve` logged about one file of the directory. */
const reloadLines = (name: string) =>
  authz
    .logLines()
    .filter((line) => line['event'] === 'policy_reload' && line['file'] === path.join(policyDir, name));

/** The first reload line about `name` with this result after the first `since` lines about it. */
async function reloadLine(name: string, result: string, since = 0): Promise<YamlMap> {
  return (await waitUntil(
    () =>
      reloadLines(name)
        .slice(since)
        .find((line) => line['result'] === result),
    (line) => line !== undefined,
    { timeoutMs: EFFECT_DEADLINE_MS, what: `a ${result} reload line for ${name}` },
  ))!;
}

beforeAll(async () => {
  issuer = await startServedIssuer('teams-e2e-key', { issuer: ISSUER, audience: BANK_AUDIENCE });
  dir = await mkdtemp(path.join(tmpdir(), 'authz-teams-e2e-'));
  policyDir = path.join(dir, 'policy.gateway.d');
  await cp(path.join(repoRoot, 'policy.gateway.d'), policyDir, { recursive: true });
  const root = await shipped('_gateway.yaml');
  await save('_gateway.yaml', {
    ...root,
    issuers: [
      { issuer: ISSUER, audiences: [BANK_AUDIENCE], jwks_uri: issuer.jwks.url, algorithms: ['RS256'] },
    ],
  });
  await save('bank.yaml', await trustingOurIssuer('bank.yaml'));
  await save('statements.yaml', await trustingOurIssuer('statements.yaml'));

  gateway = await startGateway(policyDir, 'envoy (gateway.yaml, policy directory)');
  ({ envoy, baseUrl, authz } = gateway);
});

afterAll(async () => {
  await gateway?.stop();
  await issuer?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('policy.gateway.d/ through envoy/gateway.yaml: each team’s save is judged alone', () => {
  it('serves both teams’ services as policy.gateway.yaml does', async () => {
    expect(await status('bank.example', '/balance', await bankToken()), envoy.output()).toBe(200);
    expect(await status('statements.example', '/balance', await statementsToken())).toBe(200);
    expect(await status('statements.example', '/balance', await bankToken())).toBe(401);
    expect(await status('elsewhere.example', '/balance', await bankToken())).toBe(403);
    expect(authz.logLines().filter((line) => line['event'] === 'policy_load')).toEqual([]);
  });

  it('applies the bank team’s edit while the statements team’s broken save keeps its last good version', async () => {
    const bankFile = await trustingOurIssuer('bank.yaml');
    const [bankService] = bankFile['services'] as YamlMap[];
    const routes = bankService!['routes'] as YamlMap[];
    const tightened = {
      ...bankFile,
      services: [
        {
          ...bankService,
          routes: routes.map((r) =>
            r['path'] === '/balance' ? { ...r, scopes: ['view:balance', 'audit:read'] } : r,
          ),
        },
      ],
    };
    await Promise.all([
      save('bank.yaml', tightened),
      save('statements.yaml', 'owner: team-statements\nservices: [oops\n'),
    ]);
    await becomes('bank.example', '/balance', await bankToken(), 403);
    expect(await reloadLine('bank.yaml', 'ok')).toMatchObject({ owner: 'team-bank', services: ['bank'] });
    expect(await reloadLine('statements.yaml', 'error')).toMatchObject({
      owner: 'team-statements',
      code: 'ERR_POLICY_SYNTAX',
      serving: 'last_good',
    });
    expect(await status('statements.example', '/balance', await statementsToken())).toBe(200);
    await save('statements.yaml', await trustingOurIssuer('statements.yaml'));
    await save('bank.yaml', await trustingOurIssuer('bank.yaml'));
    await becomes('bank.example', '/balance', await bankToken(), 200);
  });

  it('refuses the statements team’s claim on the bank’s host, naming both files', async () => {
    const statementsFile = await trustingOurIssuer('statements.yaml');
    const [service] = statementsFile['services'] as YamlMap[];
    const since = reloadLines('statements.yaml').length;
    await save('statements.yaml', {
      ...statementsFile,
      services: [{ ...service, hosts: ['statements.example', 'bank.example'] }],
    });
    const refused = await reloadLine('statements.yaml', 'error', since);
    expect(refused).toMatchObject({ code: 'ERR_POLICY_CONFLICT', owner: 'team-statements' });
    expect((refused['problems'] as string[])[0]).toContain(
      `host "bank.example" is held by ${path.join(policyDir, 'bank.yaml')}`,
    );
    expect(await status('bank.example', '/balance', await bankToken())).toBe(200);
    await save('statements.yaml', await trustingOurIssuer('statements.yaml'));
  });

  it('answers 503 for a new team’s hosts while its first file is refused, and serves them once it is fixed', async () => {
    const root = parse(await readFile(path.join(policyDir, '_gateway.yaml'), 'utf8')) as YamlMap;
    const loans = (scopes: string) =>
      `owner: team-loans\nservices:\n  - name: loans\n    hosts: [loans.example]\n    realm: loans-api\n    routes:\n      - { methods: [GET], path: /loans, scopes: ${scopes} }\n`;
    await save('loans.yaml', loans('view:loans')); // a string where a list belongs
    await save('_gateway.yaml', {
      ...root,
      service_files: [...(root['service_files'] as string[]), 'loans.yaml'],
    });
    await becomes('loans.example', '/loans', await bankToken('view:loans'), 503);
    // Fixed: the sidecar allows it, and Envoy's catch-all answers 404: no virtual host routes loans.example
    // yet (README, "Adding a team's service to the gateway").
    await save('loans.yaml', loans('[view:loans]'));
    await becomes('loans.example', '/loans', await bankToken('view:loans'), 404);
    expect(await status('loans.example', '/loans', await bankToken('view:balance'))).toBe(403);
  });
});
