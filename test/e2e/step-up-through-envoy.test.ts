import { setTimeout as delay } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDpopKey, type DpopKey } from '../../src/client/dpop-key.js';
import { writeDemoPolicyTrusting } from '../kit/demo-policy.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';
import { freePort } from '../kit/free-port.js';
import { startCli, startCliAndWait, type KitProcess } from '../kit/process.js';

// The step-up loop of the reference scenario through real Envoy: the development identity provider
// (`authz dev-idp`, found through OIDC discovery), `authz serve` with the demo routes, the bank, and the
// step-up client (`authz demo-client`), all over real HTTP and gRPC. The demo policy requires DPoP for
// POST /transfer (RFC 9449): the client binds its tokens to a key of its own, steps up under the DPoP scheme,
// and the transfer token, replayed by another client without that key, is refused.

const AUDIENCE = 'https://my-banking-api';

let stack: EnvoyStack;
let idp: KitProcess;
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

/** The reason of every decision authz logged for POST /transfer so far. */
const decisionReasons = () =>
  stack.authz
    .logLines()
    .filter((line) => line['event'] === 'decision' && line['path'] === '/transfer')
    .map((line) => String(line['reason']));

/** alice's token for `scope` after MFA, bound to `key` by a proof sent with the one-time code. */
async function mfaToken(scope: string, key: DpopKey | undefined): Promise<{ token: string; type: string }> {
  const begun = (await (await passwordGrant(scope)).json()) as { mfa_token?: string };
  if (begun.mfa_token === undefined) throw new Error('no MFA step');
  const { otp } = (await (
    await fetch(`${issuer}/dev/authenticator?mfa_token=${encodeURIComponent(begun.mfa_token)}`)
  ).json()) as { otp: string };
  const tokenUrl = `${issuer}/oauth/token`;
  const proof = key === undefined ? undefined : await key.proof({ method: 'POST', url: tokenUrl });
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(proof === undefined ? {} : { dpop: proof }),
    },
    body: new URLSearchParams({
      grant_type: 'http://auth0.com/oauth/grant-type/mfa-otp',
      mfa_token: begun.mfa_token,
      otp,
    }).toString(),
  });
  const body = (await response.json()) as { access_token?: string; token_type?: string };
  if (body.access_token === undefined) throw new Error(`no token: ${JSON.stringify(body)}`);
  return { token: body.access_token, type: body.token_type ?? '' };
}

/** POST /transfer of 1 to bob with `authorization`, and a proof of `key` for `token` when given. */
async function transferWith(authorization: string, proofOf?: { key: DpopKey; token: string }) {
  const url = `${api}/transfer`;
  const proof =
    proofOf === undefined
      ? undefined
      : await proofOf.key.proof({ method: 'POST', url, accessToken: proofOf.token });
  return fetch(url, {
    method: 'POST',
    headers: {
      authorization,
      'content-type': 'application/json',
      ...(proof === undefined ? {} : { dpop: proof }),
    },
    body: JSON.stringify({ to: 'bob', amount: 1 }),
  });
}

/** alice's balance, read with a DPoP-bound view:balance token of `key`. */
async function balanceOf(key: DpopKey, token: string): Promise<number> {
  const url = `${api}/balance`;
  const response = await fetch(url, {
    headers: {
      authorization: `DPoP ${token}`,
      dpop: await key.proof({ method: 'GET', url, accessToken: token }),
    },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { balance: number }).balance;
}

const allKeyFetches = () => stack.authz.logLines().filter((line) => line['event'] === 'jwks_fetch');

beforeAll(async () => {
  const idpPort = await freePort();
  idp = (await startCliAndWait(['dev-idp', '--listen', `127.0.0.1:${idpPort}`])).process;
  issuer = `http://127.0.0.1:${idpPort}`;

  // The demo policy as shipped, trusting this run's identity provider (keys refetched within seconds), with
  // this run's Envoy as the public origin a proof's htu names.
  stack = await startEnvoyStack({
    policyFile: ({ port }) =>
      writeDemoPolicyTrusting(issuer, [`http://127.0.0.1:${port}`, `http://localhost:${port}`]),
  });
  api = stack.envoy.baseUrl;
});

afterAll(async () => {
  await stack?.stop();
  await idp?.stop();
});

describe('the step-up loop through real Envoy', () => {
  it('runs the eight steps: 200, 403 insufficient_scope, MFA for exactly transfer:funds, 201, balance moved', async () => {
    const { code, output } = await runDemoClient(api);
    expect(code, output).toBe(0);
    const jkt = /^0\. This client makes its DPoP key .*thumbprint ([A-Za-z0-9_-]{43})$/m.exec(output)?.[1];
    expect(jkt, output).toBeDefined();
    expect(output).toContain(`token_type=DPoP cnf.jkt=${jkt} (this client's key)`);
    expect(output).toContain('<- 200 {"account":"alice","balance":1000}');
    // The step-up challenge comes under the scheme the client used: DPoP.
    expect(output).toMatch(
      /<- 403 WWW-Authenticate: (?:.*, )?DPoP [^\n]*error="insufficient_scope", scope="transfer:funds"/,
    );
    expect(output).toContain('   DPoP error="insufficient_scope"');
    expect(output).toContain('6. Back to the identity provider for exactly scope "transfer:funds"');
    expect(output).toContain('<- mfa_required');
    expect(output).toMatch(
      /access token: sub=alice scope="transfer:funds" acr=urn:bank:mfa amr=pwd,mfa token_type=DPoP cnf\.jkt=/,
    );
    expect(output).toContain('<- 201 ');
    expect(output).toContain("alice's balance moved by 25 (from 1000 to 975).");

    // Step 9: the stolen transfer token, as Bearer and with another key's proof: refused, balance unchanged.
    const stolen = output.slice(output.indexOf('9. The stolen transfer token'));
    expect(stolen).toContain(`The token is DPoP-bound: cnf.jkt=${jkt}, this client's key.`);
    const refusals = [...stolen.matchAll(/^ {6}<- (\d{3}) WWW-Authenticate: (.*)$/gm)];
    expect(refusals.map((match) => match[1])).toEqual(['401', '401']);
    for (const refusal of refusals) expect(refusal[2]).toMatch(/error="invalid_token"/);
    expect(stolen).toContain(
      'Balance first, by the rightful client: <- 200 {"account":"alice","balance":975}',
    );
    expect(stolen).toContain(
      'Balance again, by the rightful client: <- 200 {"account":"alice","balance":975}',
    );
    expect(stolen).toContain('Both replays refused; the balance is unchanged (975)');
    await expect
      .poll(decisionReasons)
      .toEqual(expect.arrayContaining(['binding_dpop_scheme_required', 'binding_dpop_key_mismatch']));
    // Never a whole token on the terminal.
    expect(output).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
    // The MFA code went to the identity provider's log, as it would go to the user's phone.
    await expect
      .poll(() => idp.logLines().some((line) => line['event'] === 'mfa_code' && line['user'] === 'alice'))
      .toBe(true);
  });

  it('never lets a password-only token transfer, even when it asks for transfer:funds', async () => {
    // The identity provider demands MFA for transfer:funds: no token comes back without it.
    const response = await passwordGrant('transfer:funds');
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: 'mfa_required' });
  });
});

describe('DPoP-bound transfer tokens through real Envoy', () => {
  it('transfers with a DPoP-bound token and a fresh proof of its key', async () => {
    const key = await createDpopKey();
    const { token, type } = await mfaToken('view:balance transfer:funds', key);
    expect(type).toBe('DPoP');
    expect(decodeJwt(token)['cnf']).toEqual({ jkt: key.thumbprint });
    const before = await balanceOf(key, token);
    const moved = await transferWith(`DPoP ${token}`, { key, token });
    expect(moved.status).toBe(201);
    expect(await balanceOf(key, token)).toBe(before - 1);
  });

  it('refuses the stolen token: as Bearer, and with a proof from another key; the balance stays', async () => {
    const key = await createDpopKey();
    const { token } = await mfaToken('view:balance transfer:funds', key);
    const before = await balanceOf(key, token);

    const asBearer = await transferWith(`Bearer ${token}`);
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);

    const thief = await createDpopKey();
    const otherKey = await transferWith(`DPoP ${token}`, { key: thief, token });
    expect(otherKey.status).toBe(401);
    expect(otherKey.headers.get('www-authenticate')).toMatch(/DPoP .*error="invalid_token"/);

    expect(await balanceOf(key, token)).toBe(before);
    // Decision lines reach the log as the answers go out: wait for them.
    await expect
      .poll(() => decisionReasons().slice(-2))
      .toEqual(['binding_dpop_scheme_required', 'binding_dpop_key_mismatch']);
  });

  it('refuses a transfer with a token that is not bound to a key: /transfer requires DPoP', async () => {
    const { token, type } = await mfaToken('view:balance transfer:funds', undefined);
    expect(type).toBe('Bearer');
    const refused = await transferWith(`Bearer ${token}`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/DPoP/);
  });
});

/** Runs `authz demo-client` against `target`; resolves to its exit code and everything it printed. */
async function runDemoClient(target: string): Promise<{ code: number | null; output: string }> {
  // Bounded by the test's timeout, as long as it needs on a loaded machine.
  const { code, stdout, stderr } = await startCli([
    ...['demo-client', '--api', target, '--issuer', issuer, '--otp', 'auto'],
  ]).finished;
  return { code, output: stdout + stderr };
}

describe('key rotation at the identity provider mid-run', () => {
  it('picks up a new kid after one refetch while old tokens keep working, until their key is retired', async () => {
    const before = await passwordToken('view:balance');
    expect(await balanceWith(before)).toBe(200);
    const fetchesBefore = allKeyFetches().length;

    const kid = await rotate(false);
    const after = await passwordToken('view:balance');
    expect(decodeProtectedHeader(after).kid).toBe(kid);
    expect(decodeProtectedHeader(after).kid).not.toBe(decodeProtectedHeader(before).kid);
    await delay(1100); // past the 1 s refresh cooldown since the last fetch

    expect(await balanceWith(after)).toBe(200);
    expect(await balanceWith(after)).toBe(200);
    expect(await balanceWith(before)).toBe(200); // its key is still published
    // One fetch brought the new kid: the refetch for the unknown kid, or the background refresh (due every
    // 7.5 to 9 s with jwks_cache_ttl 10s) if it happened to come first. Either way, no more than one.
    const fetchedSince = allKeyFetches().slice(fetchesBefore);
    expect(fetchedSince.map((line) => [line['trigger'], line['outcome']])).toEqual([
      [expect.stringMatching(/^(unknown_key|refresh)$/), 'ok'],
    ]);

    // Rotate again and retire every key but the new one: the old keys stay trusted until the cached key
    // set expires (jwks_cache_ttl), then the refetched set no longer has them.
    await rotate(true);
    let retired: Response | undefined;
    const deadline = Date.now() + 20_000; // the next refresh is due within 9 s
    do {
      await delay(500);
      retired = await fetch(`${api}/balance`, { headers: { authorization: `Bearer ${before}` } });
    } while (retired.status === 200 && Date.now() < deadline);
    expect(retired.status).toBe(401);
    expect(retired.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await balanceWith(await passwordToken('view:balance'))).toBe(200);
  }, 60_000);
});

describe('server nonces (dpop.nonce: required) through real Envoy', () => {
  let nonceStack: EnvoyStack;

  beforeAll(async () => {
    nonceStack = await startEnvoyStack({
      policyFile: ({ origin }) => writeDemoPolicyTrusting(issuer, [origin], { dpop: { nonce: 'required' } }),
      upstream: { port: stack.upstreamPort },
    });
  });

  afterAll(async () => {
    await nonceStack?.stop();
  });

  it('the demo client follows use_dpop_nonce: one retry with the nonce, then the latest nonce in every proof', async () => {
    const { code, output } = await runDemoClient(nonceStack.envoy.baseUrl);
    expect(code, output).toBe(0);
    expect(output).toContain('<- 201 ');
    expect(output).toContain('Both replays refused');
    const reasons = () =>
      nonceStack.authz
        .logLines()
        .filter((line) => line['event'] === 'decision')
        .map((line) => `${String(line['method'])} ${String(line['path'])} ${String(line['reason'])}`);
    // Each client's first call has no nonce yet and is asked for one; the retry carries it, and every later
    // proof carries the latest nonce without being asked again. The thief's client does the same.
    await expect
      .poll(reasons)
      .toEqual([
        'GET /balance dpop_nonce_missing',
        'GET /balance allowed',
        'POST /transfer insufficient_scope',
        'POST /transfer allowed',
        'GET /balance allowed',
        'GET /balance allowed',
        'POST /transfer binding_dpop_scheme_required',
        'POST /transfer dpop_nonce_missing',
        'POST /transfer binding_dpop_key_mismatch',
        'GET /balance allowed',
      ]);
  });
});
