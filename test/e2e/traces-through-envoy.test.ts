import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDemoPolicy } from '../kit/demo-policy.js';
import { dpopProof, generateDpopKey } from '../kit/dpop-proofs.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';
import { startOtelCollector, type CollectedSpan, type OtelCollector } from '../kit/otel-collector.js';
import { rawRequest, type RawAnswer } from '../kit/raw-http.js';
import { startServedIssuer, type ServedIssuer } from '../kit/served-issuer.js';

// One trace per request, across the proxy and the sidecar: a real OpenTelemetry Collector
// (test/kit/otel-collector.ts), real Envoy on envoy/envoy.yaml exporting its spans there (only the ports
// changed), and `authz serve` exporting its own there over OTLP/HTTP, configured by the SDK's environment
// variables alone. Envoy's sampling is parent-based (envoy.yaml): each request carries a W3C traceparent from
// a client span of this test's; a sampled one must come back as Envoy's SERVER span under that client span,
// Envoy's CLIENT span for the ext_authz call under it, and the sidecar's SERVER span for the Check under
// that, with attributes that say what was decided and why, and never a token or a proof.

const ISSUER = 'https://issuer.traces.test/';
const AUDIENCE = 'https://my-banking-api';
const CHECK_SPAN = 'envoy.service.auth.v3.Authorization/Check';
/** What Envoy's gRPC client names its span for the ext_authz call ("async <service>.<method> egress"). */
const EXT_AUTHZ_SPAN = 'async envoy.service.auth.v3.Authorization.Check egress';
const JWT_SHAPED = /eyJ[\w-]+\.[\w-]+/;
// A guard for a loaded machine. Envoy sends its spans in batches of 5 (runtime
// tracing.opentelemetry.min_flush_spans) and the rest every 5 s (flush_interval_ms): five traced requests
// make ten spans of Envoy's, so usually two full batches and no wait for the timer.
const WAIT_MS = 20_000;

/** A client span of this test's, and the traceparent that names it as the parent (W3C Trace Context). */
interface ClientSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceparent: string;
}

function clientSpan(sampled: boolean): ClientSpan {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? '01' : '00'}` };
}

/** The requests sent with a sampled traceparent. */
type Case = 'allowed' | 'cached' | 'insufficient_scope' | 'no_token' | 'dpop';
const CASES: readonly Case[] = ['allowed', 'cached', 'insufficient_scope', 'no_token', 'dpop'];

/** A request sent with a sampled traceparent, what it was answered, and what its Check must say. */
interface Traced {
  readonly client: ClientSpan;
  readonly answer: RawAnswer;
  readonly expected: Readonly<Record<string, unknown>>;
  /** The sidecar's child spans this request must have under its Check span. */
  readonly children: readonly string[];
}

let collector: OtelCollector;
let issuer: ServedIssuer;
let stack: EnvoyStack;
/** Every token and DPoP proof sent: none may show up in a span. */
const secrets: string[] = [];
const traced = new Map<Case, Traced>();
let unsampled: { client: ClientSpan; answer: RawAnswer };
let malformed: { answer: RawAnswer; without: RawAnswer };
let spans: readonly CollectedSpan[];

async function get(headers: Record<string, string>): Promise<RawAnswer> {
  return rawRequest(stack.envoy.baseUrl, '/balance', { headers });
}

async function bearer(claims: Record<string, unknown>): Promise<Record<string, string>> {
  const jwt = await issuer.token({ claims });
  secrets.push(jwt);
  return { authorization: `Bearer ${jwt}` };
}

function inTrace(traceId: string): CollectedSpan[] {
  return spans.filter((span) => span.traceId === traceId);
}

/** A request's spans: Envoy's for it and for its ext_authz call, the sidecar's Check, and its children. */
function spansOf(request: Traced): {
  ingress: CollectedSpan[];
  extAuthz: CollectedSpan[];
  check: CollectedSpan[];
  trace: CollectedSpan[];
} {
  const trace = inTrace(request.client.traceId);
  const envoy = trace.filter((span) => span.serviceName === 'envoy');
  return {
    ingress: envoy.filter((span) => span.kind === 'SERVER'),
    extAuthz: envoy.filter((span) => span.name === EXT_AUTHZ_SPAN),
    check: trace.filter((span) => span.name === CHECK_SPAN),
    trace,
  };
}

function complete(seen: readonly CollectedSpan[]): boolean {
  return [...traced.values()].every((request) => {
    const trace = seen.filter((span) => span.traceId === request.client.traceId);
    const names = new Set(trace.map((span) => span.name));
    return (
      [EXT_AUTHZ_SPAN, CHECK_SPAN, ...request.children].every((name) => names.has(name)) &&
      trace.some((span) => span.serviceName === 'envoy' && span.kind === 'SERVER')
    );
  });
}

beforeAll(async () => {
  collector = await startOtelCollector();
  issuer = await startServedIssuer('traces-e2e-key', { issuer: ISSUER, audience: AUDIENCE });
  stack = await startEnvoyStack({
    policyFile: ({ origin }) => writeDemoPolicy({ public_origin: origin, issuers: [issuer.policyEntry()] }),
    // The SDK's own variables, nothing of the sidecar's: OTLP/HTTP to the collector, batches every 100 ms.
    authzEnv: {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.otlpHttpUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
    otelCollector: collector.otlpGrpcPort,
  });

  // First what must leave no trace: Envoy and the SDK export in order, so once the later sampled requests'
  // spans are in, any of these would be too.
  const unsampledClient = clientSpan(false);
  unsampled = {
    client: unsampledClient,
    answer: await get({ traceparent: unsampledClient.traceparent, ...(await bearer({ sub: 'ursula' })) }),
  };
  malformed = {
    answer: await get({ traceparent: '00-not-a-trace-context-01' }),
    without: await get({}),
  };

  const send = async (
    name: Case,
    headers: Record<string, string>,
    expected: Record<string, unknown>,
    children: readonly string[],
  ) => {
    const client = clientSpan(true);
    traced.set(name, {
      client,
      answer: await get({ traceparent: client.traceparent, ...headers }),
      expected,
      children,
    });
  };
  const alice = await bearer({ sub: 'alice' });
  const allowed = { decision: 'allow', status: 200, reason: 'allowed', token_binding: 'bearer' };
  await send('allowed', alice, { ...allowed, token_cache: 'miss', missing_scopes: [] }, [
    'authz.verify_token',
  ]);
  // The same token again: from the token cache, so not verified again.
  await send('cached', alice, { ...allowed, token_cache: 'hit', missing_scopes: [] }, []);
  await send(
    'insufficient_scope',
    await bearer({ sub: 'alice', scope: 'transfer:funds' }),
    {
      decision: 'deny',
      status: 403,
      reason: 'insufficient_scope',
      token_binding: 'bearer',
      token_cache: 'miss',
      missing_scopes: ['view:balance'],
    },
    ['authz.verify_token'],
  );
  await send(
    'no_token',
    {},
    { decision: 'deny', status: 401, reason: 'credentials_missing', missing_scopes: [] },
    [],
  );
  const holder = await generateDpopKey('ES256');
  const bound = await issuer.token({ claims: { sub: 'alice', cnf: { jkt: holder.jkt } } });
  const proof = await dpopProof(holder, {
    method: 'GET',
    url: `${stack.envoy.baseUrl}/balance`,
    accessToken: bound,
  });
  secrets.push(bound, proof);
  await send(
    'dpop',
    { authorization: `DPoP ${bound}`, dpop: proof },
    {
      decision: 'allow',
      status: 200,
      reason: 'allowed',
      token_binding: 'dpop',
      token_cache: 'miss',
      missing_scopes: [],
    },
    // The proof checked, then claimed in the replay store (single use, RFC 9449 section 11.1).
    ['authz.verify_token', 'authz.check_dpop_proof', 'authz.claim_dpop_proof'],
  );

  spans = await collector.waitForSpans(complete, {
    timeoutMs: WAIT_MS,
    what: "every sampled request's spans from Envoy and the sidecar",
  });
});

afterAll(async () => {
  await stack?.stop();
  await Promise.all([collector?.stop(), issuer?.close()]);
});

describe('traces through real Envoy and the sidecar, in one collector', () => {
  it('answers the traced requests as ever: 200 (twice), 403 insufficient_scope, 401, 200 with DPoP', () => {
    const statuses = Object.fromEntries([...traced].map(([name, request]) => [name, request.answer.status]));
    expect(statuses).toEqual({
      allowed: 200,
      cached: 200,
      insufficient_scope: 403,
      no_token: 401,
      dpop: 200,
    });
  });

  it.each(CASES)(
    "exports one trace for the %s request: Envoy's span under the client's, the Check under Envoy's ext_authz span",
    (name) => {
      const request = traced.get(name)!;
      const { ingress, extAuthz, check, trace } = spansOf(request);
      expect(ingress, 'one SERVER span of Envoy for the request').toHaveLength(1);
      expect(ingress[0]!.parentSpanId, "under the client's span").toBe(request.client.spanId);
      expect(extAuthz, "one span of Envoy's for the ext_authz call").toHaveLength(1);
      expect(extAuthz[0]!).toMatchObject({ kind: 'CLIENT', parentSpanId: ingress[0]!.spanId });
      expect(check, 'one Check span of the sidecar').toHaveLength(1);
      expect(check[0]!).toMatchObject({
        kind: 'SERVER',
        serviceName: 'authz',
        parentSpanId: extAuthz[0]!.spanId,
      });
      // Every other span of the trace hangs off one of these, so the trace is one tree rooted at the client.
      const ids = new Set([request.client.spanId, ...trace.map((span) => span.spanId)]);
      for (const span of trace) expect(ids.has(span.parentSpanId), span.name).toBe(true);
      expect(new Set(trace.map((span) => span.serviceName))).toEqual(new Set(['envoy', 'authz']));
    },
  );

  it.each(CASES)(
    "the sidecar's Check span for the %s request says what was decided and why, as its decision line does",
    async (name) => {
      const request = traced.get(name)!;
      const [check] = spansOf(request).check;
      const attributes = check!.attributes;
      expect(attributes).toMatchObject({
        'rpc.system': 'grpc',
        'rpc.service': 'envoy.service.auth.v3.Authorization',
        'rpc.method': 'Check',
        'rpc.grpc.status_code': 0,
        // The demo policy has one service, `default`; its rule for GET /balance.
        'authz.policy_service': 'default',
        'authz.route': 'GET /balance',
      });
      expect(attributes['authz.decision']).toBe(request.expected['decision']);
      expect(attributes['authz.status']).toBe(request.expected['status']);
      expect(attributes['authz.reason']).toBe(request.expected['reason']);
      expect(attributes['authz.missing_scopes'] ?? []).toEqual(request.expected['missing_scopes']);
      if (request.expected['token_binding'] === undefined) {
        expect(attributes['authz.token_binding']).toBeUndefined();
        expect(attributes['authz.issuer']).toBeUndefined();
      } else {
        expect(attributes['authz.token_binding']).toBe(request.expected['token_binding']);
        expect(attributes['authz.issuer']).toBe(ISSUER);
        expect(attributes['authz.token_cache']).toBe(request.expected['token_cache']);
      }
      // The decision line of this Check names the span, and says the same as its attributes.
      const line = await stack.authz.logLine(
        (logged) => logged['event'] === 'decision' && logged['trace_id'] === request.client.traceId,
        `the decision line of the ${name} request`,
        5_000,
      );
      expect(line['span_id']).toBe(check!.spanId);
      for (const field of ['policy_service', 'route', 'policy_version', 'issuer', 'token_binding']) {
        expect(attributes[`authz.${field}`], field).toBe(line[field] ?? undefined);
      }
      expect(attributes['authz.policy_version']).toMatch(/^[0-9a-f]{16}$/);
    },
  );

  it.each(CASES)('the %s Check has INTERNAL child spans for what it did, and only those', (name) => {
    const request = traced.get(name)!;
    const { check, trace } = spansOf(request);
    const under = trace.filter((span) => span.parentSpanId === check[0]!.spanId);
    expect(under.map((span) => span.name).sort()).toEqual([...request.children].sort());
    for (const span of under) expect(span).toMatchObject({ kind: 'INTERNAL', serviceName: 'authz' });
  });

  it('exports nothing for a request whose traceparent is not sampled (flags 00), yet logs its trace id', async () => {
    expect(unsampled.answer.status).toBe(200);
    expect(inTrace(unsampled.client.traceId)).toEqual([]);
    const line = await stack.authz.logLine(
      (logged) => logged['event'] === 'decision' && logged['trace_id'] === unsampled.client.traceId,
      'the decision line of the unsampled request',
      5_000,
    );
    expect(line).toMatchObject({ decision: 'allow', status: 200 });
    expect(line['span_id']).toBeUndefined();
  });

  // Envoy ignores a traceparent it cannot parse: no span of its own, none passed on to the sidecar.
  it('answers a request with a malformed traceparent as one without', () => {
    const answer = (raw: RawAnswer) => ({
      status: raw.status,
      challenge: raw.headers['www-authenticate'],
      body: raw.body,
    });
    expect(answer(malformed.answer)).toEqual(answer(malformed.without));
    expect(malformed.answer.status).toBe(401);
  });

  it("puts no token, no proof and nothing JWT-shaped in any span, Envoy's or the sidecar's", () => {
    expect(secrets.length).toBeGreaterThan(0);
    expect(spans.length).toBeGreaterThan(0);
    for (const span of collector.spans()) {
      const values = [
        span.name,
        ...Object.values(span.attributes).flat(),
        ...Object.values(span.resourceAttributes).flat(),
      ].map(String);
      for (const value of values) {
        expect(value, `${span.serviceName} ${span.name}`).not.toMatch(JWT_SHAPED);
        for (const secret of secrets) expect(value.includes(secret), `${span.name}: a secret`).toBe(false);
      }
    }
  });
});
