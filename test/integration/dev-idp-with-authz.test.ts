import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevIdp, type RunningDevIdp } from '../../src/demo/idp/dev-idp-server.js';
import { startAuthzServer, type RunningAuthzServer } from '../../src/server/authz-server.js';
import {
  AUDIENCE,
  connectCheckClient,
  createLogSink,
  createTempDir,
  headerValue,
  httpCheckRequest,
  writeTextFile,
  type CheckClient,
  type CheckResponseView,
} from '../kit/authz-harness.js';

/*
 * The development identity provider against the project's own authorization server, configured the way
 * the demo policy is (OpenID Connect discovery, require_typ at+jwt, a /transfer route that wants
 * transfer:funds plus an MFA login at most 10 minutes old): the step-up loop from a password token to an
 * allowed transfer, and again once the MFA login has gone stale. Both share one skewed clock.
 */

const MFA_GRANT = 'http://auth0.com/oauth/grant-type/mfa-otp';

function stepUpPolicy(issuer: string): string {
  return (
    'version: 1\n' +
    'realm: bank-api\n' +
    'issuers:\n' +
    `  - issuer: ${issuer}\n` +
    `    audiences: [${AUDIENCE}]\n` +
    '    discovery: true\n' +
    '    algorithms: [RS256]\n' +
    '    require_typ: at+jwt\n' +
    'routes:\n' +
    '  - { methods: [GET], path: /balance, scopes: [view:balance] }\n' +
    '  - methods: [POST]\n' +
    '    path: /transfer\n' +
    '    scopes: [transfer:funds]\n' +
    '    authentication: { acr_values: [urn:bank:mfa], amr: [mfa], max_age: 10m }\n'
  );
}

describe('development identity provider tokens through the authorization server', () => {
  let skewMs = 0;
  const now = () => Date.now() + skewMs;
  let idp: RunningDevIdp;
  let temp: { dir: string; remove: () => Promise<void> };
  let server: RunningAuthzServer;
  let client: CheckClient;

  const token = async (
    params: Record<string, string>,
  ): Promise<{ status: number; body: Record<string, string> }> => {
    const response = await fetch(`${idp.issuer}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };
  /** Logs alice in with `extra`; completes MFA through the simulated authenticator when asked to. */
  const login = async (extra: Record<string, string>): Promise<string> => {
    const first = await token({
      grant_type: 'password',
      username: 'alice',
      password: 'alice-password',
      audience: AUDIENCE,
      ...extra,
    });
    if (first.status === 200) return first.body['access_token']!;
    expect(first.body['error']).toBe('mfa_required');
    const mfaToken = first.body['mfa_token']!;
    const authenticator = await fetch(`${idp.issuer}/dev/authenticator?mfa_token=${mfaToken}`);
    const { otp } = (await authenticator.json()) as { otp: string };
    const second = await token({ grant_type: MFA_GRANT, mfa_token: mfaToken, otp });
    expect(second.status).toBe(200);
    return second.body['access_token']!;
  };
  const check = (method: string, path: string, accessToken: string): Promise<CheckResponseView> =>
    client.check(httpCheckRequest({ method, path, authorization: `Bearer ${accessToken}` }));
  const deniedWith = (response: CheckResponseView) => ({
    status: response.denied_response?.status?.code,
    challenge: headerValue(response.denied_response?.headers ?? [], 'www-authenticate'),
  });

  beforeAll(async () => {
    const idpLogs = createLogSink();
    idp = await startDevIdp({
      host: '127.0.0.1',
      port: 0,
      audience: AUDIENCE,
      logger: idpLogs.logger,
      now,
      accessTokenTtlSeconds: 3600, // outlives the 10-minute max_age, so staleness is what gets refused
    });
    temp = await createTempDir('dev-idp-authz-');
    const policyFile = await writeTextFile(temp.dir, 'policy.yaml', stepUpPolicy(idp.issuer));
    server = await startAuthzServer({
      policyFile,
      listen: '127.0.0.1:0',
      logger: createLogSink().logger,
      now,
    });
    client = connectCheckClient(server.port);
  });

  afterAll(async () => {
    client?.close();
    await server?.close({ graceMs: 1000 });
    await idp?.close();
    await temp?.remove();
  });

  it('allows the balance with a password login, and asks for transfer:funds on a transfer', async () => {
    const viewToken = await login({ scope: 'view:balance' });
    expect((await check('GET', '/balance', viewToken)).status?.code).toBe(GrpcStatus.OK);
    const transfer = deniedWith(await check('POST', '/transfer', viewToken));
    expect(transfer.status).toBe(403);
    expect(transfer.challenge).toContain('error="insufficient_scope"');
    expect(transfer.challenge).toContain('scope="transfer:funds"');
  });

  it('allows a transfer after MFA, and asks to step up again once the MFA login is stale', async () => {
    const transferToken = await login({ scope: 'view:balance transfer:funds' });
    const allowed = await check('POST', '/transfer', transferToken);
    expect(allowed.status?.code).toBe(GrpcStatus.OK);
    expect(headerValue(allowed.ok_response?.headers ?? [], 'x-auth-subject')).toBe('alice');

    skewMs += 11 * 60_000;
    const stale = deniedWith(await check('POST', '/transfer', transferToken));
    expect(stale.status).toBe(401);
    expect(stale.challenge).toContain('error="insufficient_user_authentication"');
    expect(stale.challenge).toContain('max_age="600"');

    // The client answers the challenge as RFC 9470 describes: log in again with its acr_values and max_age.
    const fresh = await login({
      scope: 'view:balance transfer:funds',
      acr_values: 'urn:bank:mfa',
      max_age: '600',
    });
    expect((await check('POST', '/transfer', fresh)).status?.code).toBe(GrpcStatus.OK);
  });

  it('picks up a rotated key once its refresh cooldown allows, and keeps accepting the old one', async () => {
    const before = await login({ scope: 'view:balance' });
    expect((await check('GET', '/balance', before)).status?.code).toBe(GrpcStatus.OK);
    await idp.rotateKeys();
    const after = await login({ scope: 'view:balance' });
    // A verifier fetches again for an unknown kid at most once per jwks_refresh_cooldown (30 s by default),
    // so a demo that rotates keys should expect new tokens to be refused for up to that long.
    skewMs += 31_000;
    expect((await check('GET', '/balance', after)).status?.code).toBe(GrpcStatus.OK);
    expect((await check('GET', '/balance', before)).status?.code).toBe(GrpcStatus.OK);
  });
});
