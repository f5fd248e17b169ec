import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ensureDevCertificates, type DevTlsFiles } from '../../src/demo/dev-tls/dev-certificates.js';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../src/demo/dev-token/dev-keys.js';
import { certificateThumbprint } from '../../src/demo/dev-token/token-binding.js';
import { demoPolicyWith } from '../kit/demo-policy.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';
import { runCli } from '../kit/process.js';
import { waitUntil } from '../kit/wait-until.js';
import { plainRequest, tlsRequest, type ChallengedAnswer } from '../kit/tls-request.js';

// Certificate-bound tokens (RFC 8705) through the real Envoy: the `ingress_tls` listener of envoy/envoy.yaml
// (TLS, client certificates requested and checked against the development CA, never required) sends the
// connection's client certificate to `authz serve`, which compares its SHA-256 thumbprint with the token's
// cnf["x5t#S256"]. Tokens come from `authz dev-token --bind-cert` (the built CLI) with a development folder
// of this suite's own, whose key set the demo policy.yaml (routes unchanged, mtls: allowed) trusts.

let devDir: string;
let tls: DevTlsFiles;
let stack: EnvoyStack;
/** Bound to alice's client certificate; view:balance. */
let boundToken: string;
/** A plain bearer token; view:balance. */
let bearerToken: string;

/** `authz dev-token ARGS` with this suite's development folder; the token it printed. */
async function devToken(args: readonly string[]): Promise<string> {
  const { code, stdout, stderr } = await runCli(['dev-token', ...args], { env: { AUTHZ_DEV_DIR: devDir } });
  if (code !== 0) throw new Error(`authz dev-token exited (${code}):\n${stdout}${stderr}`);
  return stdout.trim();
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const decisions = () => stack.authz.logLines().filter((line) => line['event'] === 'decision');

/**
 * Sends a request and returns its answer with the decision authz logged for it: the log line may come a
 * moment after the answer, so it waits for one more decision than there were before.
 */
async function decided(
  send: () => Promise<ChallengedAnswer>,
): Promise<ChallengedAnswer & { decision: Record<string, unknown> }> {
  const before = decisions().length;
  const answer = await send();
  const logged = await waitUntil(decisions, (lines) => lines.length > before, {
    timeoutMs: 5_000,
    what: 'the decision of the request',
  });
  expect(logged, 'one decision per request').toHaveLength(before + 1);
  return { ...answer, decision: logged.at(-1)! };
}

/** A 401 with an invalid_token challenge under the scheme the client used, Bearer, and the same in JSON. */
function expectInvalidToken(
  answer: ChallengedAnswer & { decision: Record<string, unknown> },
  reason: string,
): void {
  expect(answer.status, answer.body).toBe(401);
  const challenge = answer.challenges.find((value) => value.startsWith('Bearer '));
  expect(challenge, answer.challenges.join(' | ')).toMatch(/^Bearer realm="bank-api", error="invalid_token"/);
  // /balance takes DPoP too (dpop: allowed): a bare challenge of its own, without the error (RFC 9449 7.1).
  const dpop = answer.challenges.filter((value) => value.startsWith('DPoP '));
  expect(dpop, answer.challenges.join(' | ')).toHaveLength(1);
  expect(dpop[0]).not.toContain('error=');
  expect(answer.headers['content-type']).toBe('application/json');
  expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_token' });
  expect(answer.decision).toMatchObject({ decision: 'deny', status: 401, reason });
}

beforeAll(async () => {
  devDir = await mkdtemp(path.join(tmpdir(), 'authz-mtls-e2e-'));
  tls = await ensureDevCertificates(devDir);
  // Minted first: the first dev-token writes the key set (jwks.json) the policy reads at start-up.
  boundToken = await devToken(['--scope', 'view:balance', '--bind-cert', tls.clients.alice.cert]);
  bearerToken = await devToken(['--scope', 'view:balance']);

  const policy = await demoPolicyWith({
    issuers: [
      {
        issuer: DEV_ISSUER,
        audiences: [DEV_AUDIENCE],
        jwks_file: path.join(devDir, 'jwks.json'),
        algorithms: ['RS256'],
        require_typ: 'at+jwt',
      },
    ],
  });
  const policyFile = path.join(devDir, 'policy.yaml');
  await writeFile(policyFile, stringify(policy));
  stack = await startEnvoyStack({ policyFile: () => Promise.resolve(policyFile), tls });
});

afterAll(async () => {
  await stack?.stop();
  if (devDir !== undefined) await rm(devDir, { recursive: true, force: true });
});

describe('certificate-bound tokens (RFC 8705) through the TLS listener of real Envoy', () => {
  const overTls = (client: 'alice' | 'mallory' | undefined, headers: Record<string, string>) =>
    decided(() =>
      tlsRequest(stack.envoy.tlsUrl, '/balance', {
        ca: tls.ca.cert,
        headers,
        ...(client === undefined ? {} : { client: tls.clients[client] }),
      }),
    );
  const overPlain = (headers: Record<string, string>) =>
    decided(() => plainRequest(stack.envoy.baseUrl, '/balance', { headers }));

  it('binds the dev token to the SHA-256 thumbprint of the certificate given to --bind-cert', () => {
    expect(decodeJwt(boundToken).cnf).toEqual({
      'x5t#S256': certificateThumbprint(readFileSync(tls.clients.alice.cert)),
    });
    expect(decodeJwt(bearerToken)).not.toHaveProperty('cnf');
  });

  it('answers 200 for the bound token over TLS with the certificate it is bound to', async () => {
    const answer = await overTls('alice', bearer(boundToken));
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ account: 'alice' });
    expect(answer.decision).toMatchObject({ decision: 'allow', status: 200 });
  });

  it('answers 401 invalid_token for the bound token with another client certificate', async () => {
    expectInvalidToken(await overTls('mallory', bearer(boundToken)), 'binding_certificate_mismatch');
  });

  it('answers 401 invalid_token for the bound token over TLS without a client certificate', async () => {
    expectInvalidToken(await overTls(undefined, bearer(boundToken)), 'binding_certificate_missing');
  });

  it('answers 401 invalid_token for the bound token on the plain listener', async () => {
    expectInvalidToken(await overPlain(bearer(boundToken)), 'binding_certificate_missing');
  });

  describe('a forged X-Forwarded-Client-Cert header naming alice’s certificate does not help', () => {
    const alicePem = () => readFileSync(tls.clients.alice.cert, 'utf8');
    // The shape Envoy itself would forward (HttpConnectionManager.forward_client_cert_details), with the
    // hash, the URL-encoded certificate and the subject of alice's certificate.
    const forged = () => ({
      'x-forwarded-client-cert':
        `Hash=${Buffer.from(certificateThumbprint(alicePem()), 'base64url').toString('hex')};` +
        `Cert="${encodeURIComponent(alicePem())}";Subject="CN=alice"`,
    });

    it('over TLS without a client certificate', async () => {
      const answer = await overTls(undefined, { ...bearer(boundToken), ...forged() });
      expectInvalidToken(answer, 'binding_certificate_missing');
    });

    it("over TLS with mallory's certificate", async () => {
      const answer = await overTls('mallory', { ...bearer(boundToken), ...forged() });
      expectInvalidToken(answer, 'binding_certificate_mismatch');
    });

    it('on the plain listener', async () => {
      const answer = await overPlain({ ...bearer(boundToken), ...forged() });
      expectInvalidToken(answer, 'binding_certificate_missing');
    });
  });

  it('still answers 200 for an unbound bearer token over TLS, with or without a certificate (mtls: allowed)', async () => {
    for (const client of [undefined, 'alice', 'mallory'] as const) {
      const answer = await overTls(client, bearer(bearerToken));
      expect(answer.status, `${client ?? 'no certificate'}: ${answer.body}`).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ account: 'alice' });
    }
  });

  it('never logs a token', () => {
    for (const token of [boundToken, bearerToken]) {
      expect(stack.authz.output()).not.toContain(token.split('.')[2]);
      expect(stack.envoy.output()).not.toContain(token.split('.')[2]);
    }
  });
});
