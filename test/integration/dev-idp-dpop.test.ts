import { request as httpRequest } from 'node:http';
import {
  base64url,
  calculateJwkThumbprint,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  generateSecret,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTPayload,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../kit/memory-logger.js';
import { createDpopKey } from '../../src/client/dpop-key.js';
import { startDevIdp, type RunningDevIdp } from '../../src/demo/idp/dev-idp-server.js';

/*
 * DPoP at the development identity provider's token endpoint (RFC 9449 section 5), over real HTTP: a
 * request with a valid proof gets a token bound to the proof's key (`cnf.jkt`, `token_type: DPoP`) for
 * every grant; a request without one gets a bearer token as before; every bad proof is answered 400
 * `invalid_dpop_proof` and uses nothing up. Proofs come from the client's own key maker
 * (src/client/dpop-key.ts) and, for the malformed ones, from jose with an exportable key.
 */

const AUDIENCE = 'https://my-banking-api';
const MFA_GRANT = 'http://auth0.com/oauth/grant-type/mfa-otp';

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** An ES256 key whose halves a test can take apart, to build the proofs a real client never would. */
interface LooseKey {
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  readonly publicJwk: JWK;
  readonly privateJwk: JWK;
}

async function looseKey(): Promise<LooseKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const { kty, crv, x, y } = await exportJWK(publicKey);
  return { privateKey, publicJwk: { kty, crv, x, y }, privateJwk: await exportJWK(privateKey) };
}

describe('development identity provider: DPoP-bound tokens', () => {
  const log = memoryLogger();
  let idp: RunningDevIdp;
  let base: string;
  let tokenUrl: string;
  /** Tokens and proofs: no log line may contain one. */
  const secrets = new Set<string>(['alice-password']);
  const keep = <T extends string>(secret: T): T => {
    secrets.add(secret);
    return secret;
  };

  /** A token request with each of `proofs` as its own `DPoP` header line (node:http keeps them apart). */
  const postToken = (params: Record<string, string>, proofs: readonly string[] = []): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const body = new URLSearchParams(params).toString();
      const headers: Record<string, string | string[]> = {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(Buffer.byteLength(body)),
      };
      if (proofs.length > 0) headers['dpop'] = proofs.map(keep);
      const request = httpRequest(tokenUrl, { method: 'POST', headers }, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      });
      request.on('error', reject);
      request.end(body);
    });
  const passwordParams = (scope = 'view:balance') => ({
    grant_type: 'password',
    username: 'alice',
    password: 'alice-password',
    audience: AUDIENCE,
    scope,
  });
  const verify = async (token: string) =>
    jwtVerify(keep(token), createRemoteJWKSet(new URL(`${idp.issuer}/.well-known/jwks.json`)), {
      issuer: idp.issuer,
      audience: AUDIENCE,
      typ: 'at+jwt',
      algorithms: ['RS256'],
    });
  /** A proof signed by `key` with exactly `header` and `claims` (defaults: a valid proof). */
  const looseProof = async (
    key: LooseKey,
    claims: JWTPayload = {},
    header: Record<string, unknown> = {},
  ): Promise<string> =>
    new SignJWT({
      jti: crypto.randomUUID(),
      htm: 'POST',
      htu: tokenUrl,
      iat: Math.floor(Date.now() / 1000),
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk, ...header })
      .sign(key.privateKey);
  const expectRefused = (reply: Reply, because: RegExp) => {
    expect(reply.status).toBe(400);
    expect(reply.body['error']).toBe('invalid_dpop_proof');
    expect(String(reply.body['error_description'])).toMatch(because);
  };

  beforeAll(async () => {
    idp = await startDevIdp({ host: '127.0.0.1', port: 0, audience: AUDIENCE, logger: log.logger });
    base = `http://127.0.0.1:${idp.port}`;
    tokenUrl = `${base}/oauth/token`;
  });

  afterAll(async () => {
    await idp?.close();
  });

  it('lists the proof algorithms it takes in discovery: asymmetric only', async () => {
    const metadata = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    const algs = metadata['dpop_signing_alg_values_supported'] as string[];
    expect(algs).toContain('ES256');
    expect(algs).toContain('PS256');
    expect(algs).toContain('EdDSA');
    expect(algs.some((alg) => alg === 'none' || alg.startsWith('HS'))).toBe(false);
  });

  it("binds the password grant's token to the proof's key: cnf.jkt, token_type DPoP", async () => {
    const key = await createDpopKey();
    const reply = await postToken(passwordParams(), [await key.proof({ method: 'POST', url: tokenUrl })]);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ token_type: 'DPoP', scope: 'view:balance', expires_in: 600 });
    const { payload } = await verify(reply.body['access_token'] as string);
    expect(payload['cnf']).toEqual({ jkt: key.thumbprint });
    // The client's own thumbprint is the RFC 7638 one jose computes.
    expect(await calculateJwkThumbprint({ ...key.publicJwk }, 'sha256')).toBe(key.thumbprint);
    const issued = log
      .records()
      .filter((record) => record['event'] === 'token_issued')
      .at(-1);
    expect(issued).toMatchObject({ token_type: 'DPoP', jkt: key.thumbprint });
  });

  it('still issues a bearer token, without cnf, to a request without a proof', async () => {
    const reply = await postToken(passwordParams());
    expect(reply.status).toBe(200);
    expect(reply.body['token_type']).toBe('Bearer');
    const { payload } = await verify(reply.body['access_token'] as string);
    expect(payload['cnf']).toBeUndefined();
  });

  it('binds the MFA grant to the key of the proof sent with the one-time code', async () => {
    const key = await createDpopKey();
    const begun = await postToken(passwordParams('transfer:funds'));
    expect(begun.body['error']).toBe('mfa_required');
    const mfaToken = keep(begun.body['mfa_token'] as string);
    const code = (await (await fetch(`${base}/dev/authenticator?mfa_token=${mfaToken}`)).json()) as {
      otp: string;
    };

    // A bad proof is refused before the code is looked at, so the transaction is still there.
    const stale = await looseProof(await looseKey(), { iat: Math.floor(Date.now() / 1000) - 3600 });
    expectRefused(
      await postToken({ grant_type: MFA_GRANT, mfa_token: mfaToken, otp: code.otp }, [stale]),
      /iat/,
    );

    const reply = await postToken({ grant_type: MFA_GRANT, mfa_token: mfaToken, otp: code.otp }, [
      await key.proof({ method: 'POST', url: tokenUrl }),
    ]);
    expect(reply.status).toBe(200);
    expect(reply.body['token_type']).toBe('DPoP');
    const { payload } = await verify(reply.body['access_token'] as string);
    expect(payload).toMatchObject({
      scope: 'transfer:funds',
      acr: 'urn:bank:mfa',
      cnf: { jkt: key.thumbprint },
    });
  });

  it('takes an htu that differs only in letter case, default port, query or fragment', async () => {
    const variants = [`HTTP://127.0.0.1:${idp.port}/oauth/token`, `${tokenUrl}?x=1#y`];
    for (const htu of variants) {
      const loose = await looseKey();
      const reply = await postToken(passwordParams(), [await looseProof(loose, { htu })]);
      expect(reply.status, htu).toBe(200);
      const { payload } = await verify(reply.body['access_token'] as string);
      expect(payload['cnf']).toEqual({ jkt: await calculateJwkThumbprint(loose.publicJwk, 'sha256') });
    }
  });

  describe('refuses with 400 invalid_dpop_proof', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases: {
      name: string;
      because: RegExp;
      proofs: (key: LooseKey) => Promise<string[]>;
    }[] = [
      {
        name: 'two DPoP header lines',
        because: /exactly one/,
        proofs: async (key) => [await looseProof(key), await looseProof(key)],
      },
      {
        name: 'two proofs joined with a comma in one line',
        because: /exactly one/,
        proofs: async (key) => [`${await looseProof(key)}, ${await looseProof(key)}`],
      },
      { name: 'something that is not a JWS', because: /does not verify/, proofs: async () => ['not-a-jws'] },
      {
        name: 'typ JWT instead of dpop+jwt',
        because: /does not verify/,
        proofs: async (key) => [await looseProof(key, {}, { typ: 'JWT' })],
      },
      {
        name: 'alg none',
        because: /does not verify/,
        proofs: async (key) => {
          const encode = (value: object) => base64url.encode(JSON.stringify(value));
          const header = { alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk };
          const claims = { jti: 'j', htm: 'POST', htu: tokenUrl, iat: now() };
          return [`${encode(header)}.${encode(claims)}.`];
        },
      },
      {
        name: 'an HMAC proof with a symmetric jwk',
        because: /does not verify/,
        proofs: async () => {
          const secret = await generateSecret('HS256', { extractable: true });
          const jwk = await exportJWK(secret);
          return [
            await new SignJWT({ jti: 'j', htm: 'POST', htu: tokenUrl, iat: now() })
              .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk })
              .sign(secret),
          ];
        },
      },
      {
        name: 'a jwk with the private key in it',
        because: /does not verify|private/,
        proofs: async (key) => [await looseProof(key, {}, { jwk: key.privateJwk })],
      },
      {
        name: 'no jwk',
        because: /does not verify/,
        proofs: async (key) => [await looseProof(key, {}, { jwk: undefined })],
      },
      {
        name: "a jwk that is not the signer's",
        because: /does not verify/,
        proofs: async (key) => [await looseProof(key, {}, { jwk: (await looseKey()).publicJwk })],
      },
      {
        name: 'a tampered payload',
        because: /does not verify/,
        proofs: async (key) => {
          const [header, , signature] = (await looseProof(key)).split('.');
          const claims = base64url.encode(
            JSON.stringify({ jti: 'j', htm: 'POST', htu: tokenUrl, iat: now() }),
          );
          return [`${header}.${claims}.${signature}`];
        },
      },
      { name: 'htm GET', because: /htm/, proofs: async (key) => [await looseProof(key, { htm: 'GET' })] },
      {
        name: 'an htu naming another endpoint',
        because: /htu/,
        proofs: async (key) => [await looseProof(key, { htu: `${base}/authorize` })],
      },
      {
        name: 'an htu on another origin',
        because: /htu/,
        proofs: async (key) => [await looseProof(key, { htu: 'http://idp.example/oauth/token' })],
      },
      { name: 'no htu', because: /htu/, proofs: async (key) => [await looseProof(key, { htu: undefined })] },
      {
        name: 'iat two minutes old',
        because: /iat/,
        proofs: async (key) => [await looseProof(key, { iat: now() - 120 })],
      },
      {
        name: 'iat two minutes ahead',
        because: /iat/,
        proofs: async (key) => [await looseProof(key, { iat: now() + 120 })],
      },
      { name: 'no iat', because: /iat/, proofs: async (key) => [await looseProof(key, { iat: undefined })] },
      { name: 'no jti', because: /jti/, proofs: async (key) => [await looseProof(key, { jti: undefined })] },
    ];

    it.each(cases)('$name', async ({ proofs, because }) => {
      const reply = await postToken(passwordParams(), await proofs(await looseKey()));
      expectRefused(reply, because);
    });
  });

  it('never logs a proof or a token', () => {
    const lines = log.lines;
    expect(lines.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      for (const line of lines) expect(line.includes(secret), 'a secret in a log line').toBe(false);
    }
  });
});
