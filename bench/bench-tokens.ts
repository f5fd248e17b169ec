import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import protobuf from 'protobufjs';
import { dpopProof, generateDpopKey, type DpopKey } from '../test/kit/dpop-proofs.js';
import { generateTestKey, signMany, signTestToken, type TestKey } from '../test/kit/tokens.js';
import { CHECK_PROTO, PROTOS_DIR } from './authorization-service.js';

/** The issuer and audience of every bench token, trusted by the bench's policy. */
export const BENCH_ISSUER = 'https://bench.example/';
export const BENCH_AUDIENCE = 'https://my-banking-api';
/** The bench policy's `public_origin`: a DPoP proof's `htu` is this plus the request path (RFC 9449). */
export const BENCH_PUBLIC_ORIGIN = 'http://127.0.0.1:8000';

/** The bench's signing key: RS256, the algorithm the demo's issuers use. */
export function generateIssuerKey(): Promise<TestKey> {
  return generateTestKey('bench-key', 'RS256');
}

/**
 * Signs `count` distinct access tokens (each its own `sub` and `jti`) valid for `lifetimeSeconds`.
 *
 * @param prefix makes the `jti`s of one batch distinct from every other batch's
 * @param claims more claims, e.g. `cnf` for a sender-constrained token
 */
export function signAccessTokens(
  key: TestKey,
  options: { count: number; prefix: string; scope: string; lifetimeSeconds: number; claims?: object },
): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  return signMany(options.count, (i) =>
    signTestToken(
      key,
      { issuer: BENCH_ISSUER, audience: BENCH_AUDIENCE },
      {
        now,
        claims: {
          sub: `user-${i}`,
          jti: `${options.prefix}-${i}`,
          scope: options.scope,
          exp: now + options.lifetimeSeconds,
          ...options.claims,
        },
      },
    ),
  );
}

/** A DPoP client's key (RFC 9449): ES256, the algorithm DPoP clients use most. */
export function generateDpopClientKey(): Promise<DpopKey> {
  return generateDpopKey('ES256');
}

/**
 * Signs `count` DPoP proofs (RFC 9449 section 4.2) for `method` on `uri` with `accessToken` (`ath`), each its
 * own `jti`, all issued now: every one is valid once, for as long as the policy's `dpop.max_age` after its
 * `iat`, which this returns with them.
 *
 * @param prefix makes the `jti`s of one batch distinct from every other batch's
 */
export async function signDpopProofs(
  key: DpopKey,
  options: { count: number; prefix: string; method: string; uri: string; accessToken: string },
): Promise<{ proofs: string[]; issuedAt: number }> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const proofs = await signMany(options.count, (i) =>
    dpopProof(key, {
      method: options.method,
      url: options.uri,
      accessToken: options.accessToken,
      now: issuedAt,
      claims: { jti: `${options.prefix}-${i}` },
    }),
  );
  return { proofs, issuedAt };
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
