import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, startCli, type RunningCli } from './cli-process.js';
import { writeDemoPolicyTrusting } from './demo-policy.js';
import { freePorts, startEnvoy, type RunningEnvoy } from './envoy-process.js';

// The step-up loop of the reference scenario through real Envoy: the development identity provider
// (`authz dev-idp`, found through OIDC discovery), `authz serve` with the demo routes, the bank, and the
// step-up client (`authz demo-client`), all over real HTTP and gRPC.

const AUDIENCE = 'https://my-banking-api';

let envoy: RunningEnvoy;
let authz: RunningCli;
let bank: RunningCli;
let idp: RunningCli;
let issuer: string;
let api: string;

/** alice's password grant at the dev IdP, answered as it comes. */
function passwordGrant(scope: string): Promise<Response> {
  return fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      username: 'alice',
      password: 'alice-password',
      audience: AUDIENCE,
      scope,
    }).toString(),
  });
}

async function passwordToken(scope: string): Promise<string> {
  const response = await passwordGrant(scope);
  const body = (await response.json()) as { access_token?: string };
  if (body.access_token === undefined) throw new Error(`no token: ${JSON.stringify(body)}`);
  return body.access_token;
}

const balanceWith = (token: string) =>
  fetch(`${api}/balance`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

const rotate = async (retirePrevious: boolean): Promise<string> => {
  const response = await fetch(`${issuer}/dev/rotate-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ retire_previous: retirePrevious }),
  });
  return ((await response.json()) as { kid: string }).kid;
};

const keyFetches = (trigger: string) =>
  authz.logLines().filter((line) => line['event'] === 'jwks_fetch' && line['trigger'] === trigger);

beforeAll(async () => {
  const [listen, admin, authzPort, bankPort, idpPort] = await freePorts(5);
  idp = await startCli(['dev-idp', '--listen', `127.0.0.1:${idpPort}`]);
  issuer = `http://127.0.0.1:${idpPort}`;

  // The demo policy as shipped, trusting this run's identity provider (keys refetched within seconds).
  const policyFile = await writeDemoPolicyTrusting(issuer);

  authz = await startCli(['serve', '--policy', policyFile, '--listen', `127.0.0.1:${authzPort}`]);
  bank = await startCli(['bank', '--listen', `127.0.0.1:${bankPort}`]);
  envoy = await startEnvoy({ listen: listen!, admin: admin!, authz: authzPort!, bank: bankPort! });
  api = envoy.baseUrl;
});

afterAll(async () => {
  await envoy?.stop();
  await Promise.all([authz?.stop(), bank?.stop(), idp?.stop()]);
});

describe('the step-up loop through real Envoy', () => {
  it('runs the eight steps: 200, 403 insufficient_scope, MFA for exactly transfer:funds, 201, balance moved', async () => {
    const child = spawn(
      process.execPath,
      [cliPath, 'demo-client', '--api', api, '--issuer', issuer, '--otp', 'auto'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));

    expect(code, output).toBe(0);
    expect(output).toContain('<- 200 {"account":"alice","balance":1000}');
    expect(output).toContain(
      '<- 403 WWW-Authenticate: Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds"',
    );
    expect(output).toContain('6. Back to the identity provider for exactly scope "transfer:funds"');
    expect(output).toContain('<- mfa_required');
    expect(output).toMatch(/access token: sub=alice scope="transfer:funds" acr=urn:bank:mfa amr=pwd,mfa/);
    expect(output).toContain('<- 201 ');
    expect(output).toContain("alice's balance moved by 25 (from 1000 to 975).");
    // The MFA code went to the identity provider's log, as it would go to the user's phone.
    expect(idp.logLines().some((line) => line['event'] === 'mfa_code' && line['user'] === 'alice')).toBe(
      true,
    );
  });

  it('never lets a password-only token transfer, even when it asks for transfer:funds', async () => {
    // The identity provider demands MFA for transfer:funds: no token comes back without it.
    const response = await passwordGrant('transfer:funds');
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: 'mfa_required' });
  });
});

describe('key rotation at the identity provider mid-run', () => {
  it('picks up a new kid after one refetch while old tokens keep working, until their key is retired', async () => {
    const before = await passwordToken('view:balance');
    expect(await balanceWith(before)).toBe(200);
    const unknownKeyFetches = keyFetches('unknown_key').length;

    const kid = await rotate(false);
    const after = await passwordToken('view:balance');
    expect(decodeProtectedHeader(after).kid).toBe(kid);
    expect(decodeProtectedHeader(after).kid).not.toBe(decodeProtectedHeader(before).kid);
    await delay(1100); // past the 1 s refresh cooldown since the last fetch

    expect(await balanceWith(after)).toBe(200);
    expect(await balanceWith(after)).toBe(200);
    expect(await balanceWith(before)).toBe(200); // its key is still published
    expect(keyFetches('unknown_key').length).toBe(unknownKeyFetches + 1);

    // Rotate again and retire every key but the new one: the old keys stay trusted until the cached key
    // set expires (jwks_cache_ttl), then the refetched set no longer has them.
    await rotate(true);
    let retired: Response | undefined;
    const deadline = Date.now() + 15_000;
    do {
      await delay(500);
      retired = await fetch(`${api}/balance`, { headers: { authorization: `Bearer ${before}` } });
    } while (retired.status === 200 && Date.now() < deadline);
    expect(retired.status).toBe(401);
    expect(retired.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await balanceWith(await passwordToken('view:balance'))).toBe(200);
  }, 30_000);
});
