import { createHash, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Worker } from 'node:worker_threads';
import { calculateJwkThumbprint } from 'jose';
import protobuf from 'protobufjs';
import { CHECK_PROTO, PROTOS_DIR } from './authorization-service.js';

/** The issuer and audience of every bench token, trusted by the bench's policy. */
export const BENCH_ISSUER = 'https://bench.example/';
export const BENCH_AUDIENCE = 'https://my-banking-api';
/** The bench policy's `public_origin`: a DPoP proof's `htu` is this plus the request path (RFC 9449). */
export const BENCH_PUBLIC_ORIGIN = 'http://127.0.0.1:8000';

/** The bench's signing key: RS256, the algorithm the demo's issuers use. */
export interface BenchIssuerKey {
  readonly privateKeyPem: string;
  /** The public key as a JWK with `kid`, `alg` and `use`, for the JWKS server and the verify limit server. */
  readonly publicJwk: JsonWebKey & { kid: string; alg: string; use: string };
}

/** A fresh 2048-bit RSA key. */
export function generateIssuerKey(): BenchIssuerKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid: 'bench-key', alg: 'RS256', use: 'sig' },
  };
}

/** What the signing workers (sign-tokens-worker.mjs) share: everything but the numbered claims' numbers. */
interface SigningJob {
  readonly privateKeyPem: string;
  readonly header: object;
  readonly claims: object;
  /** Claim name → prefix: JWT number i gets `${prefix}${i}`. */
  readonly numbered: Readonly<Record<string, string>>;
  /** 'ieee-p1363' for ECDSA (JWS signatures are r || s); RSA ignores it. */
  readonly dsaEncoding?: 'der' | 'ieee-p1363';
}

/**
 * Signs `count` JWTs of `job` spread over one worker thread per core: signing is what takes the time
 * (about 2,500 RS256 or 6,000 ES256 signatures a second per core here).
 */
async function signInWorkers(job: SigningJob, count: number): Promise<string[]> {
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(count / 1_000)));
  const share = Math.ceil(count / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, i) => {
      const from = i * share;
      const to = Math.min(count, from + share);
      return new Promise<string[]>((resolve, reject) => {
        const worker = new Worker(new URL('./sign-tokens-worker.mjs', import.meta.url), {
          workerData: { ...job, from, to },
          execArgv: [], // no TypeScript hooks: the worker is plain JavaScript
        });
        worker.once('message', (tokens: string[]) => resolve(tokens));
        worker.once('error', reject);
      });
    }),
  );
  return parts.flat();
}

/**
 * Signs `count` distinct access tokens (each its own `sub` and `jti`) valid for `lifetimeSeconds`.
 *
 * @param prefix makes the `jti`s of one batch distinct from every other batch's
 * @param claims more claims, e.g. `cnf` for a sender-constrained token
 */
export async function signAccessTokens(
  key: BenchIssuerKey,
  options: { count: number; prefix: string; scope: string; lifetimeSeconds: number; claims?: object },
): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const job: SigningJob = {
    privateKeyPem: key.privateKeyPem,
    header: { alg: 'RS256', kid: key.publicJwk.kid, typ: 'at+jwt' },
    claims: {
      iss: BENCH_ISSUER,
      aud: BENCH_AUDIENCE,
      scope: options.scope,
      iat: now,
      exp: now + options.lifetimeSeconds,
      ...options.claims,
    },
    numbered: { sub: 'user-', jti: `${options.prefix}-` },
  };
  return signInWorkers(job, options.count);
}

/** A DPoP client's key (RFC 9449): ES256, the algorithm DPoP clients use most. */
export interface DpopClientKey {
  readonly privateKeyPem: string;
  /** The public key as a JWK (`kty`, `crv`, `x`, `y`), for the `jwk` header of each proof. */
  readonly publicJwk: JsonWebKey;
  /** Its RFC 7638 SHA-256 thumbprint, the `cnf.jkt` of a token bound to it. */
  readonly thumbprint: string;
}

/** A fresh P-256 key with its thumbprint (jose's, as the server computes it). */
export async function generateDpopClientKey(): Promise<DpopClientKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const publicJwk = { kty, crv, x, y };
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicJwk,
    thumbprint: await calculateJwkThumbprint(publicJwk as Parameters<typeof calculateJwkThumbprint>[0]),
  };
}

/**
 * Signs `count` DPoP proofs (RFC 9449 section 4.2) for `method` on `uri` with `accessToken` (`ath`), each its
 * own `jti`, all issued now: every one is valid once, for as long as the policy's `dpop.max_age` after its
 * `iat`, which this returns with them.
 *
 * @param prefix makes the `jti`s of one batch distinct from every other batch's
 */
export async function signDpopProofs(
  key: DpopClientKey,
  options: { count: number; prefix: string; method: string; uri: string; accessToken: string },
): Promise<{ proofs: string[]; issuedAt: number }> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const job: SigningJob = {
    privateKeyPem: key.privateKeyPem,
    header: { typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk },
    claims: {
      htm: options.method,
      htu: options.uri,
      iat: issuedAt,
      ath: createHash('sha256').update(options.accessToken, 'ascii').digest('base64url'),
    },
    numbered: { jti: `${options.prefix}-` },
    dsaEncoding: 'ieee-p1363',
  };
  return { proofs: await signInWorkers(job, options.count), issuedAt };
}

/**
 * A CheckRequest (external_auth.proto, proto field names) like the ones Envoy sends: method, path and the
 * headers, pseudo-headers included, with `Authorization` when given and `headers` (names in lower case, as
 * Envoy gives them, e.g. `dpop`).
 */
export function checkRequest(
  method: string,
  path: string,
  id: string,
  authorization?: string,
  headers: Readonly<Record<string, string>> = {},
): object {
  return {
    attributes: {
      request: {
        http: {
          id,
          method,
          path,
          host: 'bank',
          scheme: 'http',
          protocol: 'HTTP/1.1',
          headers: {
            ':authority': 'bank',
            ':method': method,
            ':path': path,
            ':scheme': 'http',
            accept: '*/*',
            'user-agent': 'authz-bench',
            'x-forwarded-proto': 'http',
            'x-request-id': id,
            ...(authorization === undefined ? {} : { authorization }),
            ...headers,
          },
        },
      },
    },
  };
}

/** CheckRequests in a ghz `--binary-file`, sent round robin: message i with call i. */
export interface DataFile {
  readonly file: string;
  /** How many distinct requests it holds. */
  readonly count: number;
  /** The first one, for checking a server's answer before timing it. */
  readonly sample: object;
}

/**
 * Writes `requests` as a ghz `--binary-file`: protobuf CheckRequests, each prefixed with its length. ghz
 * decodes such a file once at start, where a JSON `--data-file` would be decoded call by call (as many
 * times as there are distinct requests), which made ghz itself the bottleneck of the unique-token runs.
 *
 * @throws Error when a request has a field the protos do not know (protobuf would drop it silently)
 */
export async function writeDataFile(file: string, requests: readonly object[]): Promise<DataFile> {
  if (requests.length === 0) throw new Error(`${file}: no requests`);
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS_DIR, target);
  root.loadSync(CHECK_PROTO, { keepCase: true });
  const type = root.lookupType('envoy.service.auth.v3.CheckRequest');
  const writer = protobuf.Writer.create();
  for (const request of requests) type.encodeDelimited(type.fromObject(request), writer);
  const bytes = writer.finish();
  const first = type.toObject(type.decodeDelimited(bytes));
  if (!isDeepStrictEqual(first, requests[0])) {
    throw new Error(`${file}: the CheckRequest does not survive encoding: ${JSON.stringify(requests[0])}`);
  }
  await writeFile(file, bytes);
  return { file, count: requests.length, sample: requests[0]! };
}
