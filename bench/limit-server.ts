import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  Server,
  ServerCredentials,
  type sendUnaryData,
  type ServerUnaryCall,
  status as GrpcStatus,
} from '@grpc/grpc-js';
import { authorizationService } from './authorization-service.js';

// A limit server: what the stack alone can do on this machine, for `npm run bench` to compare `authz serve`
// with. A grpc-js server of our protos (the same library and decoding authz uses) whose Check either
//   empty:  answers OK without looking at the request, or
//   verify: checks the bearer token's RS256 signature with node:crypto against one public key (imported
//           once, as authz caches its issuer's keys) and parses the payload, then answers OK (or
//           UNAUTHENTICATED when the signature does not verify).
// Run by run-bench.ts as a child process pinned to the server core:
//
//   node --import ./bench/register-typescript.mjs bench/limit-server.ts empty|verify [PUBLIC_JWK_JSON]
//
// Listens on 127.0.0.1 on a free port and prints {"event":"started","port":N}.

interface CheckRequestShape {
  attributes?: { request?: { http?: { headers?: Record<string, string> } | null } | null } | null;
}

const OK = { status: { code: GrpcStatus.OK, message: '' } };
const UNAUTHENTICATED = { status: { code: GrpcStatus.UNAUTHENTICATED, message: '' } };

/** Whether `authorization` is `Bearer <JWS>` whose RS256 signature `key` verifies, its payload parsed. */
function verifiesBearerToken(authorization: string | undefined, key: KeyObject): boolean {
  if (authorization === undefined || !authorization.startsWith('Bearer ')) return false;
  const token = authorization.slice('Bearer '.length);
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  if (firstDot < 0 || secondDot < 0) return false;
  const signature = Buffer.from(token.slice(secondDot + 1), 'base64url');
  if (!verify('sha256', Buffer.from(token.slice(0, secondDot)), key, signature)) return false;
  const claims: unknown = JSON.parse(
    Buffer.from(token.slice(firstDot + 1, secondDot), 'base64url').toString(),
  );
  return typeof claims === 'object' && claims !== null;
}

type CheckCall = ServerUnaryCall<CheckRequestShape, unknown>;

function checkHandler(mode: string, publicJwk: string | undefined) {
  if (mode === 'empty') {
    return (_call: CheckCall, callback: sendUnaryData<unknown>) => callback(null, OK);
  }
  if (mode === 'verify' && publicJwk !== undefined) {
    const key = createPublicKey({ key: JSON.parse(publicJwk) as never, format: 'jwk' });
    return (call: CheckCall, callback: sendUnaryData<unknown>) => {
      const authorization = call.request.attributes?.request?.http?.headers?.['authorization'];
      callback(null, verifiesBearerToken(authorization, key) ? OK : UNAUTHENTICATED);
    };
  }
  throw new Error('usage: limit-server.ts empty | verify PUBLIC_JWK_JSON');
}

const server = new Server();
server.addService(authorizationService(), {
  Check: checkHandler(process.argv[2] ?? '', process.argv[3]),
});
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error !== null) throw error;
  console.log(JSON.stringify({ event: 'started', port }));
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.forceShutdown();
    process.exit(0);
  });
}
