import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, credentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_DEFAULTS, headerValue, type CheckResponseView } from '../kit/authz-harness.js';
import { startPolicyServer, type PolicyServer } from '../kit/policy-server.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';

/*
 * CheckRequests as Istio's sidecar sends them for an AuthorizationPolicy with action CUSTOM and the
 * envoyExtAuthzGrpc provider of deploy/istio/ (see deploy/istio/README.md), answered by the real server
 * (in this process, over real gRPC) serving the policy the manifests mount, deploy/policy/policy.yaml.
 *
 * The requests are encoded with the upstream Envoy protos (@grpc/grpc-js-xds ships them), so the fields our
 * trimmed protos/ leave out (source and destination peers with SPIFFE principals, context_extensions,
 * metadata_context, the request time) reach the server on the wire as Istio's Envoy sends them.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);
const XDS_DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE_DIRS = [
  ...['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map((dir) => path.join(XDS_DEPS, dir)),
  path.dirname(require.resolve('protobufjs/package.json')),
];

function loadUpstreamProtos(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    const found = INCLUDE_DIRS.map((dir) => path.join(dir, target)).find((candidate) =>
      existsSync(candidate),
    );
    if (found === undefined) throw new Error(`${target} is in none of ${INCLUDE_DIRS.join(', ')}`);
    return found;
  };
  root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
  root.resolveAll();
  return root;
}

const upstream = loadUpstreamProtos();
const CheckRequest = upstream.lookupType('envoy.service.auth.v3.CheckRequest');
const CheckResponse = upstream.lookupType('envoy.service.auth.v3.CheckResponse');

/** A Check client that speaks the upstream Envoy messages, as Istio's sidecar does. */
function connectUpstreamClient(port: number) {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  const check = (request: Record<string, unknown>) =>
    new Promise<CheckResponseView>((resolve, reject) => {
      client.makeUnaryRequest(
        '/envoy.service.auth.v3.Authorization/Check',
        (message: Record<string, unknown>) => {
          const problem = CheckRequest.verify(message);
          if (problem !== null) throw new Error(`not an upstream CheckRequest: ${problem}`);
          return Buffer.from(CheckRequest.encode(CheckRequest.fromObject(message)).finish());
        },
        (bytes: Buffer) =>
          CheckResponse.toObject(CheckResponse.decode(bytes), {
            longs: String,
            enums: Number,
            defaults: true,
            oneofs: true,
          }) as CheckResponseView,
        request,
        { deadline: Date.now() + 5000 },
        (error: ServiceError | null, response?: CheckResponseView) => {
          if (error !== null) reject(error);
          else resolve(response!);
        },
      );
    });
  return { check, close: () => client.close() };
}

/** SPIFFE identities as Istio's mTLS gives them (trust domain cluster.local). */
const CALLER = 'spiffe://cluster.local/ns/frontend/sa/web';
const BANK_IDENTITY = 'spiffe://cluster.local/ns/bank/sa/default';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

interface IstioRequestInit {
  readonly method: string;
  /** `:path` as Envoy reports it: the request target, query string included. */
  readonly path: string;
  readonly authorization?: string;
  /** Client-sent headers on top of what Istio's sidecar adds. */
  readonly extraHeaders?: Readonly<Record<string, string>>;
  /** Attributes Istio leaves empty, filled in to show they change nothing. */
  readonly contextExtensions?: Readonly<Record<string, string>>;
  /** Leave out every header and attribute Istio adds: the request as a bare Envoy would send it. */
  readonly bare?: boolean;
}

let requestCounter = 0;

/**
 * A CheckRequest as an Istio sidecar's inbound ext_authz filter sends it for a request from another
 * workload in the mesh: `:authority` is the Service's name with its port, `x-forwarded-proto` is http (the
 * mTLS between sidecars is below HTTP), and Envoy has added its request id, attempt count, the B3 and W3C
 * trace headers and the client certificate's identity (`x-forwarded-client-cert`); the peers carry the
 * SPIFFE principals of the mTLS connection.
 */
function istioCheckRequest(init: IstioRequestInit): Record<string, unknown> {
  const id = `istio-${++requestCounter}-0f8b6a3c-8c0e-4d5e-9a1b-2f3c4d5e6f70`;
  const authority = 'bank.bank.svc.cluster.local:8080';
  const headers: Record<string, string> = {
    ':authority': authority,
    ':method': init.method,
    ':path': init.path,
    ':scheme': 'http',
    'user-agent': 'bank-web/1.0',
    accept: 'application/json',
    'x-request-id': id,
    ...(init.bare === true
      ? {}
      : {
          'x-forwarded-proto': 'http',
          'x-envoy-attempt-count': '1',
          'x-forwarded-client-cert': `By=${BANK_IDENTITY};Hash=9ba5ee1d7c1a5c11b4d2b1d0e3c9b7e8a2f5c6d7e8f90a1b2c3d4e5f6a7b8c9d;Subject="";URI=${CALLER}`,
          'x-b3-traceid': TRACE_ID,
          'x-b3-spanid': 'a3ce929d0e0e4736',
          'x-b3-parentspanid': '00f067aa0ba902b7',
          'x-b3-sampled': '0',
          traceparent: `00-${TRACE_ID}-a3ce929d0e0e4736-00`,
        }),
    ...init.extraHeaders,
  };
  if (init.authorization !== undefined) headers['authorization'] = init.authorization;
  const peer = (address: string, port: number, principal: string) => ({
    address: { socket_address: { address, port_value: port } },
    ...(init.bare === true ? {} : { principal }),
  });
  return {
    attributes: {
      source: peer('10.244.1.7', 51234, CALLER),
      destination: peer('10.244.2.9', 8080, BANK_IDENTITY),
      request: {
        time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
        http: {
          id,
          method: init.method,
          headers,
          path: init.path,
          host: authority,
          scheme: 'http',
          protocol: 'HTTP/1.1',
        },
      },
      context_extensions: init.contextExtensions ?? {},
      metadata_context: {},
    },
  };
}

/** The decision: `allow`, or `deny <HTTP status>`, checking the gRPC status that goes with it. */
function outcome(response: CheckResponseView): string {
  if (response.http_response === 'ok_response') {
    expect(response.status?.code).toBe(GrpcStatus.OK);
    return 'allow';
  }
  expect(response.http_response).toBe('denied_response');
  return `deny ${response.denied_response?.status?.code}`;
}

/** The policy the manifests mount, its issuer's keys served from here instead of the placeholder URL. */
function deployedPolicy(jwksUrl: string): string {
  const text = readFileSync(path.join(repoRoot, 'deploy', 'policy', 'policy.yaml'), 'utf8');
  const placeholder = 'jwks_uri: https://idp.example/.well-known/jwks.json';
  if (!text.includes(placeholder))
    throw new Error(`deploy/policy/policy.yaml no longer has "${placeholder}"`);
  return text.replace(placeholder, `jwks_uri: ${jwksUrl}`);
}

describe("Istio's CheckRequests, answered with the policy deploy/ mounts", () => {
  let key: TestKey;
  let jwks: KeyServer;
  let authz: PolicyServer;
  let client: ReturnType<typeof connectUpstreamClient>;
  let viewToken: string;

  beforeAll(async () => {
    key = await generateTestKey('istio-key');
    jwks = await startKeyServer([key.publicJwk]);
    authz = await startPolicyServer({ policy: deployedPolicy(jwks.url) });
    client = connectUpstreamClient(authz.server.port);
    viewToken = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
  });

  afterAll(async () => {
    client?.close();
    await authz?.stop();
    await jwks?.close();
  });

  it('matches a path by its route although Istio reports it with the query string', async () => {
    const bearer = `Bearer ${viewToken}`;
    expect(
      outcome(
        await client.check(
          istioCheckRequest({ method: 'GET', path: '/balance?account=42', authorization: bearer }),
        ),
      ),
    ).toBe('allow');
    expect(
      outcome(
        await client.check(
          istioCheckRequest({
            method: 'GET',
            path: '/accounts/42/balance?verbose=true&x=%2F',
            authorization: bearer,
          }),
        ),
      ),
    ).toBe('allow');
    // Matched, not refused as unknown: without a token the route asks for one (401, not 403 no route).
    const anonymous = await client.check(istioCheckRequest({ method: 'GET', path: '/balance?account=42' }));
    expect(outcome(anonymous)).toBe('deny 401');
    expect(headerValue(anonymous.denied_response!.headers, 'www-authenticate')).toBe(
      'Bearer realm="bank-api"',
    );
  });

  it('decides the same with and without the headers and peers Istio adds, which it ignores', async () => {
    const cases: IstioRequestInit[] = [
      { method: 'GET', path: '/balance', authorization: `Bearer ${viewToken}` },
      { method: 'POST', path: '/transfer', authorization: `Bearer ${viewToken}` },
      { method: 'GET', path: '/balance' },
      { method: 'GET', path: '/healthz' },
      { method: 'DELETE', path: '/balance' },
    ];
    for (const init of cases) {
      const withIstio = await client.check(istioCheckRequest(init));
      const bare = await client.check(istioCheckRequest({ ...init, bare: true }));
      expect(outcome(withIstio), `${init.method} ${init.path}`).toBe(outcome(bare));
      expect(withIstio.ok_response ?? withIstio.denied_response).toEqual(
        bare.ok_response ?? bare.denied_response,
      );
    }
  });

  it("never takes the caller's mesh identity for a user: a SPIFFE principal and XFCC without a token get 401", async () => {
    const response = await client.check(
      istioCheckRequest({ method: 'GET', path: '/balance', extraHeaders: { 'x-forwarded-user': 'alice' } }),
    );
    expect(outcome(response)).toBe('deny 401');
  });

  it('ignores context_extensions other than `service` (Istio sets none; clients cannot set them)', async () => {
    const response = await client.check(
      istioCheckRequest({
        method: 'POST',
        path: '/transfer',
        authorization: `Bearer ${viewToken}`,
        contextExtensions: { route: 'public', 'x-auth-scopes': 'transfer:funds' },
      }),
    );
    expect(outcome(response)).toBe('deny 403');
    expect(headerValue(response.denied_response!.headers, 'www-authenticate')).toContain(
      'error="insufficient_scope"',
    );
  });

  it("overwrites a client's spoofed identity headers with the token's, so they never reach the bank", async () => {
    const spoofed = { 'x-auth-subject': 'admin', 'x-auth-scopes': 'transfer:funds view:balance' };
    const response = await client.check(
      istioCheckRequest({
        method: 'GET',
        path: '/balance',
        authorization: `Bearer ${viewToken}`,
        extraHeaders: spoofed,
      }),
    );
    expect(outcome(response)).toBe('allow');
    const ok = response.ok_response!;
    expect(headerValue(ok.headers, 'x-auth-subject')).toBe('alice');
    expect(headerValue(ok.headers, 'x-auth-scopes')).toBe('view:balance');
    // OVERWRITE_IF_EXISTS_OR_ADD: Envoy replaces the client's copy rather than adding a second one.
    for (const option of ok.headers) expect(option.append_action).toBe(2);
    expect(JSON.stringify(ok)).not.toContain('admin');
  });

  it('removes spoofed identity headers where it has nothing to say (public routes), and refuses a token without sub', async () => {
    const spoofed = { 'x-auth-subject': 'admin', 'x-auth-scopes': 'transfer:funds' };
    const health = await client.check(
      istioCheckRequest({ method: 'GET', path: '/healthz', extraHeaders: spoofed }),
    );
    expect(outcome(health)).toBe('allow');
    expect(health.ok_response!.headers).toEqual([]);
    expect([...health.ok_response!.headers_to_remove].sort()).toEqual(['x-auth-scopes', 'x-auth-subject']);

    const noSubject = await signTestToken(key, TOKEN_DEFAULTS, {
      claims: { sub: undefined, scope: 'view:balance' },
    });
    const response = await client.check(
      istioCheckRequest({
        method: 'GET',
        path: '/balance',
        authorization: `Bearer ${noSubject}`,
        extraHeaders: spoofed,
      }),
    );
    // RFC 9068 section 2.2: a JWT access token names its subject; the deployed policy keeps require_sub on.
    expect(outcome(response)).toBe('deny 401');
  });

  it("refuses paths Istio's default normalisation leaves alone, rather than guess (400)", async () => {
    // Istio's default pathNormalization (BASE) resolves dot segments but keeps `//` and encoded slashes,
    // which envoy/envoy.yaml merges or rejects before authz sees them.
    for (const target of ['//balance', '/public/..%2Fbalance', '/balance%2F..%2Ftransfer']) {
      const response = await client.check(
        istioCheckRequest({ method: 'GET', path: target, authorization: `Bearer ${viewToken}` }),
      );
      expect(outcome(response), target).toBe('deny 400');
    }
  });

  it('refuses two Authorization headers, which Envoy joins with a comma in the header map (400)', async () => {
    const response = await client.check(
      istioCheckRequest({
        method: 'GET',
        path: '/balance',
        authorization: `Bearer ${viewToken},Bearer ${viewToken}`,
      }),
    );
    expect(outcome(response)).toBe('deny 400');
  });
});
