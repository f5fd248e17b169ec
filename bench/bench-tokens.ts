import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Worker } from 'node:worker_threads';
import protobuf from 'protobufjs';
import { CHECK_PROTO, PROTOS_DIR } from './authorization-service.js';

/** The issuer and audience of every bench token, trusted by the bench's policy. */
export const BENCH_ISSUER = 'https://bench.example/';
export const BENCH_AUDIENCE = 'https://my-banking-api';

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

/**
 * Signs `count` distinct access tokens (each its own `sub` and `jti`) valid for `lifetimeSeconds`, spread
 * over one worker thread per core: signing is what takes the time (about 2,500 RS256 signatures a second
 * per core here).
 *
 * @param prefix makes the `jti`s of one batch distinct from every other batch's
 */
export async function signAccessTokens(
  key: BenchIssuerKey,
  options: { count: number; prefix: string; scope: string; lifetimeSeconds: number },
): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const job = {
    privateKeyPem: key.privateKeyPem,
    header: { alg: 'RS256', kid: key.publicJwk.kid, typ: 'at+jwt' },
    claims: {
      iss: BENCH_ISSUER,
      aud: BENCH_AUDIENCE,
      scope: options.scope,
      iat: now,
      exp: now + options.lifetimeSeconds,
    },
    prefix: options.prefix,
  };
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(options.count / 1_000)));
  const share = Math.ceil(options.count / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, i) => {
      const from = i * share;
      const to = Math.min(options.count, from + share);
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
 * A CheckRequest (external_auth.proto, proto field names) like the ones Envoy sends: method, path and the
 * headers, pseudo-headers included, with `Authorization` when given.
 */
export function checkRequest(method: string, path: string, id: string, authorization?: string): object {
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
