import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTracing, CHECK_SPAN_NAME, type StartedTracing } from '../../src/tracing/start-tracing.js';
import { tracingSettings } from '../../src/tracing/tracing-settings.js';
import {
  httpCheckRequest,
  policyYaml,
  startInProcessAuthz,
  TOKEN_DEFAULTS,
  type InProcessAuthz,
} from '../kit/authz-harness.js';
import { startKeyServer, type KeyServer } from '../kit/key-server.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * Tracing of Checks, in-process: the production server and SDK set-up with an in-memory exporter in place of
 * OTLP (the real collector is in test/e2e/traces-through-envoy.test.ts). What a span joins, what it says,
 * what it never says, and that an exporter that fails or hangs never touches an answer.
 */

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const SAMPLED = `00-${TRACE_ID}-${PARENT_ID}-01`;

/** Settings as `authz serve` reads them, exporting every 10 ms so tests wait little. */
function settings(extra: Record<string, string> = {}) {
  const read = tracingSettings({
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_BSP_SCHEDULE_DELAY: '10',
    ...extra,
  });
  if (!read.enabled) throw new Error('tracing should be on');
  return read;
}

describe('Check spans (in-process server, in-memory exporter)', () => {
  let key: TestKey;
  let jwks: KeyServer;
  let exporter: InMemorySpanExporter;
  let tracing: StartedTracing;
  let authz: InProcessAuthz;
  let viewToken: string;

  beforeAll(async () => {
    key = await generateTestKey('trace-key');
    jwks = await startKeyServer([key.publicJwk]);
    exporter = new InMemorySpanExporter();
    tracing = startTracing(settings(), { serviceVersion: '0.0.0-test', exporter });
    authz = await startInProcessAuthz({
      policy: policyYaml({ keys: { jwksUri: jwks.url } }),
      tempPrefix: 'authz-traces-',
      tracing: tracing.checks,
    });
    viewToken = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
  });

  afterAll(async () => {
    await authz?.stop();
    await tracing?.shutdown();
    await jwks?.close();
  });

  beforeEach(() => exporter.reset());

  /** The spans of one trace once its Check span is exported. */
  async function spansOf(traceId: string): Promise<ReadableSpan[]> {
    await waitUntil(
      () => exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId),
      (spans) => spans.some((span) => span.name === CHECK_SPAN_NAME),
      { timeoutMs: 5000, what: `the Check span of trace ${traceId}` },
    );
    return exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
  }

  function checkSpan(spans: readonly ReadableSpan[]): ReadableSpan {
    const found = spans.filter((span) => span.name === CHECK_SPAN_NAME);
    expect(found).toHaveLength(1);
    return found[0]!;
  }

  it('joins the trace in the gRPC metadata, as a SERVER span with the decision, and logs its ids', async () => {
    const response = await authz.client.check(
      httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${viewToken}` }),
      { traceparent: SAMPLED, tracestate: 'vendor=value' },
    );
    expect(response.http_response).toBe('ok_response');
    const spans = await spansOf(TRACE_ID);
    const span = checkSpan(spans);
    expect(span.kind).toBe(1); // SpanKind.SERVER
    expect(span.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(span.parentSpanContext?.isRemote).toBe(true);
    expect(span.spanContext().traceState?.get('vendor')).toBe('value');
    expect(span.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'envoy.service.auth.v3.Authorization',
      'rpc.method': 'Check',
      'rpc.grpc.status_code': 0,
      'authz.decision': 'allow',
      'authz.status': 200,
      'authz.reason': 'allowed',
      'authz.policy_service': 'default',
      'authz.route': 'GET /balance',
      'authz.issuer': TOKEN_DEFAULTS.issuer,
      'authz.token_binding': 'bearer',
    });
    expect(typeof span.attributes['authz.policy_version']).toBe('string');
    expect(span.resource.attributes['service.name']).toBe('authz');
    const line = authz.sink
      .records()
      .findLast((record) => record['event'] === 'decision' && record['trace_id'] === TRACE_ID);
    expect(line?.['span_id']).toBe(span.spanContext().spanId);
  });

  it('has a verify_token child on a cache miss, and token_cache hit and no child when cached', async () => {
    const token = await signTestToken(key, TOKEN_DEFAULTS, {
      claims: { scope: 'view:balance', jti: 'never-seen-before' },
    });
    const request = httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` });
    const first = '11111111111111111111111111111111';
    const second = '22222222222222222222222222222222';
    await authz.client.check(request, { traceparent: `00-${first}-${PARENT_ID}-01` });
    await authz.client.check(request, { traceparent: `00-${second}-${PARENT_ID}-01` });

    const missed = await spansOf(first);
    const parent = checkSpan(missed);
    expect(parent.attributes['authz.token_cache']).toBe('miss');
    const verify = missed.find((span) => span.name === 'authz.verify_token');
    expect(verify?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(verify?.kind).toBe(0); // INTERNAL
    expect(verify?.attributes).toMatchObject({ 'authz.verification': 'verified' });

    const hit = await spansOf(second);
    expect(checkSpan(hit).attributes['authz.token_cache']).toBe('hit');
    expect(hit.map((span) => span.name)).toEqual([CHECK_SPAN_NAME]);
  });

  it("has a fetch_key_set child of verify_token when a new kid sends the Check to the issuer's keys", async () => {
    const rotated = await generateTestKey('trace-key-2');
    jwks.publish([key.publicJwk, rotated.publicJwk]);
    // A refetch for an unknown kid waits a second after the last fetch (issuer-keys.ts, MIN_FETCH_GAP_MS).
    await waitUntil(
      () => Date.now() - jwks.lastKeysServedAt,
      (gap) => gap > 1100,
      {
        timeoutMs: 5000,
        what: 'a second since the last key set fetch',
      },
    );
    const token = await signTestToken(rotated, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
    const rotation = 'abababababababababababababababab';
    const response = await authz.client.check(
      httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` }),
      { traceparent: `00-${rotation}-${PARENT_ID}-01` },
    );
    expect(response.http_response).toBe('ok_response');
    const spans = await spansOf(rotation);
    const verify = spans.find((span) => span.name === 'authz.verify_token');
    const fetch = spans.find((span) => span.name === 'authz.fetch_key_set');
    expect(fetch?.parentSpanContext?.spanId).toBe(verify?.spanContext().spanId);
    expect(fetch?.attributes).toEqual({
      'authz.issuer': TOKEN_DEFAULTS.issuer,
      'authz.key_set.trigger': 'unknown_key',
      'authz.key_set.outcome': 'ok',
    });
  });

  it('names the missing scopes of a 403, and the reason of a 401', async () => {
    const noScope = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'other' } });
    const forbidden = '33333333333333333333333333333333';
    const unauthenticated = '44444444444444444444444444444444';
    await authz.client.check(
      httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${noScope}` }),
      { traceparent: `00-${forbidden}-${PARENT_ID}-01` },
    );
    await authz.client.check(httpCheckRequest({ method: 'POST', path: '/transfer' }), {
      traceparent: `00-${unauthenticated}-${PARENT_ID}-01`,
    });
    expect(checkSpan(await spansOf(forbidden)).attributes).toMatchObject({
      'authz.decision': 'deny',
      'authz.status': 403,
      'authz.reason': 'insufficient_scope',
      'authz.missing_scopes': ['view:balance'],
    });
    const denied = checkSpan(await spansOf(unauthenticated)).attributes;
    expect(denied).toMatchObject({ 'authz.decision': 'deny', 'authz.status': 401 });
    expect(denied['authz.reason']).toBe('credentials_missing');
    expect(denied['authz.issuer']).toBeUndefined();
  });

  it("falls back to the request's headers, W3C or B3, when the metadata holds no context", async () => {
    const fromHeader = '55555555555555555555555555555555';
    const fromB3 = '66666666666666666666666666666666';
    await authz.client.check(
      httpCheckRequest({
        method: 'GET',
        path: '/healthz',
        headers: { traceparent: `00-${fromHeader}-${PARENT_ID}-01` },
      }),
    );
    await authz.client.check(httpCheckRequest({ method: 'GET', path: '/healthz' }), {
      b3: `${fromB3}-${PARENT_ID}-1`,
    });
    expect(checkSpan(await spansOf(fromHeader)).parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(checkSpan(await spansOf(fromB3)).parentSpanContext?.spanId).toBe(PARENT_ID);
  });

  it('prefers the metadata (Envoy’s span) to the client’s header', async () => {
    const envoyTrace = '77777777777777777777777777777777';
    await authz.client.check(
      httpCheckRequest({
        method: 'GET',
        path: '/healthz',
        headers: { traceparent: `00-${'8'.repeat(32)}-${PARENT_ID}-01` },
      }),
      { traceparent: `00-${envoyTrace}-${'a'.repeat(16)}-01` },
    );
    expect(checkSpan(await spansOf(envoyTrace)).parentSpanContext?.spanId).toBe('a'.repeat(16));
  });

  it('exports nothing under an unsampled parent, yet logs the trace id', async () => {
    const unsampled = '99999999999999999999999999999999';
    const marker = '12121212121212121212121212121212';
    const response = await authz.client.check(
      httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${viewToken}` }),
      { traceparent: `00-${unsampled}-${PARENT_ID}-00` },
    );
    expect(response.http_response).toBe('ok_response');
    // A sampled Check after it: once its span is out, the unsampled one would be too, had it been exported.
    await authz.client.check(httpCheckRequest({ method: 'GET', path: '/healthz' }), {
      traceparent: `00-${marker}-${PARENT_ID}-01`,
    });
    await spansOf(marker);
    expect(exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === unsampled)).toEqual(
      [],
    );
    const line = authz.sink
      .records()
      .findLast((record) => record['event'] === 'decision' && record['trace_id'] === unsampled);
    expect(line).toBeDefined();
    expect(line?.['span_id']).toBeUndefined();
  });

  it.each([
    ['garbage', 'not-a-traceparent'],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${PARENT_ID}-01`],
    ['too long', `00-${TRACE_ID}-${PARENT_ID}-01${'-x'.repeat(5000)}`],
    ['version ff', `ff-${TRACE_ID}-${PARENT_ID}-01`],
  ])('answers a malformed traceparent (%s) as without one, in a new trace', async (_name, traceparent) => {
    const request = httpCheckRequest({
      method: 'GET',
      path: '/balance',
      authorization: `Bearer ${viewToken}`,
    });
    const plain = await authz.client.check(request);
    const malformed = await authz.client.check(request, { traceparent });
    expect(malformed).toEqual(plain);
    await waitUntil(
      () => exporter.getFinishedSpans().filter((span) => span.name === CHECK_SPAN_NAME),
      (spans) => spans.length >= 2,
      { timeoutMs: 5000, what: 'the two Check spans' },
    );
    for (const span of exporter.getFinishedSpans()) {
      expect(span.parentSpanContext).toBeUndefined();
      expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    }
  });

  it('never exports a token, a header value or a path in any attribute', async () => {
    const secretPath = '/balance?access_token=';
    const token = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'transfer:funds' } });
    await authz.client.check(
      httpCheckRequest({
        method: 'GET',
        path: `${secretPath}${token}`,
        authorization: `Bearer ${token}`,
        headers: { cookie: `session=${token}`, traceparent: SAMPLED },
      }),
      { traceparent: SAMPLED },
    );
    const spans = await spansOf(TRACE_ID);
    const exported = JSON.stringify(
      spans.map((span) => [span.attributes, span.resource.attributes, span.events]),
    );
    expect(exported).not.toContain(token);
    expect(exported).not.toContain(token.split('.')[2]!); // nor its signature alone
    expect(exported).not.toMatch(/eyJ[\w-]+\.[\w-]+/);
    expect(exported).not.toContain('access_token');
    expect(exported).not.toContain('session=');
  });
});

describe('an exporter that fails or hangs never touches a Check', () => {
  /** Fails every export, or holds every export forever (`hang`). */
  class BrokenExporter implements SpanExporter {
    exports = 0;
    constructor(private readonly mode: 'fail' | 'hang') {}
    export(_spans: ReadableSpan[], done: (result: ExportResult) => void): void {
      this.exports++;
      if (this.mode === 'fail')
        done({ code: ExportResultCode.FAILED, error: new Error('connect ECONNREFUSED') });
    }
    shutdown(): Promise<void> {
      return Promise.resolve();
    }
  }

  it.each(['fail', 'hang'] as const)(
    '%s: answers stay right, drops are counted, state said once',
    async (mode) => {
      const key = await generateTestKey('broken-exporter-key');
      const jwks = await startKeyServer([key.publicJwk]);
      const exporter = new BrokenExporter(mode);
      const dropped = { queue_full: 0, export_failed: 0 };
      const states: string[] = [];
      const tracing = startTracing(
        settings({ OTEL_BSP_MAX_QUEUE_SIZE: '4', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2' }),
        {
          serviceVersion: '0.0.0-test',
          exporter,
          onDropped: (cause, spans) => (dropped[cause] += spans),
          onExportState: ({ state }) => states.push(state),
        },
      );
      const authz = await startInProcessAuthz({
        policy: policyYaml({ keys: { jwksUri: jwks.url } }),
        tempPrefix: 'authz-traces-broken-',
        tracing: tracing.checks,
      });
      try {
        const token = await signTestToken(key, TOKEN_DEFAULTS, { claims: { scope: 'view:balance' } });
        for (let i = 0; i < 20; i++) {
          const response = await authz.client.check(
            httpCheckRequest({ method: 'GET', path: '/balance', authorization: `Bearer ${token}` }),
          );
          expect(response.http_response).toBe('ok_response');
        }
        if (mode === 'hang') {
          // 4 spans held (the bound), awaiting exports that never end; the rest dropped as they came.
          expect(dropped.queue_full).toBe(20 + 1 - 4); // 20 Check spans and one verify_token (the first, a miss)
          expect(states).toEqual([]);
        } else {
          await waitUntil(
            () => dropped.export_failed,
            (failed) => failed > 0,
            {
              timeoutMs: 5000,
              what: 'a failed export counted',
            },
          );
          expect(states).toEqual(['failing']);
        }
      } finally {
        await authz.stop();
        await tracing.shutdown(200); // bounded, even with an export that never ends
        await jwks.close();
      }
    },
  );
});
