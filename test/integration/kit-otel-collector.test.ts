import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spansOfOtlpJson, startOtelCollector, type OtelCollector } from '../kit/otel-collector.js';

/*
 * The test kit's OpenTelemetry Collector (test/kit/otel-collector.ts), the real one that
 * `npm run otelcol:install` builds: what an exporter sends it over OTLP/HTTP comes back from spans(),
 * flattened, as the tracing e2e reads it.
 */

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SPAN_ID = 'b7ad6b7169203331';
const PARENT_SPAN_ID = '00f067aa0ba902b7';

/** One span in OTLP/JSON (ids as hex, an int64 as a string, enums as numbers), as an SDK sends it. */
const exported = {
  resourceSpans: [
    {
      resource: {
        attributes: [
          { key: 'service.name', value: { stringValue: 'kit-test' } },
          { key: 'service.instance.id', value: { stringValue: 'one' } },
        ],
      },
      scopeSpans: [
        {
          scope: { name: 'kit-otel-collector.test' },
          spans: [
            {
              traceId: TRACE_ID,
              spanId: SPAN_ID,
              parentSpanId: PARENT_SPAN_ID,
              name: 'envoy.service.auth.v3.Authorization/Check',
              kind: 2,
              startTimeUnixNano: '1700000000000000000',
              endTimeUnixNano: '1700000000001000000',
              attributes: [
                { key: 'rpc.system', value: { stringValue: 'grpc' } },
                { key: 'authz.status', value: { intValue: '403' } },
                { key: 'authz.cached', value: { boolValue: false } },
                { key: 'authz.ratio', value: { doubleValue: 0.5 } },
                {
                  key: 'authz.missing_scopes',
                  value: { arrayValue: { values: [{ stringValue: 'transfer:funds' }] } },
                },
              ],
              status: { code: 2, message: 'denied' },
            },
          ],
        },
      ],
    },
  ],
};

let collector: OtelCollector;

beforeAll(async () => {
  collector = await startOtelCollector();
});

afterAll(async () => {
  await collector?.stop();
});

describe('the kit OpenTelemetry Collector', () => {
  it('receives a span over OTLP/HTTP and gives it back flattened, values typed', async () => {
    expect(collector.spans()).toEqual([]);
    const response = await fetch(`${collector.otlpHttpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(exported),
    });
    expect(response.status, await response.text()).toBe(200);
    const spans = await collector.waitForSpans((seen) => seen.length > 0, {
      timeoutMs: 10_000,
      what: 'the exported span in the collector file',
    });
    expect(spans).toEqual([
      {
        traceId: TRACE_ID,
        spanId: SPAN_ID,
        parentSpanId: PARENT_SPAN_ID,
        name: 'envoy.service.auth.v3.Authorization/Check',
        kind: 'SERVER',
        attributes: {
          'rpc.system': 'grpc',
          'authz.status': 403,
          'authz.cached': false,
          'authz.ratio': 0.5,
          'authz.missing_scopes': ['transfer:funds'],
        },
        serviceName: 'kit-test',
        resourceAttributes: { 'service.name': 'kit-test', 'service.instance.id': 'one' },
        statusCode: 'ERROR',
      },
    ]);
  });

  it('listens for OTLP/gRPC on a port of its own', () => {
    expect(collector.otlpGrpcPort).toBeGreaterThan(0);
    expect(new URL(collector.otlpHttpUrl).port).not.toBe(String(collector.otlpGrpcPort));
  });
});

describe('spansOfOtlpJson', () => {
  it('reads enums given by name as well as by number, and a root span without a parent', () => {
    const [span] = spansOfOtlpJson({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: TRACE_ID.toUpperCase(),
                  spanId: SPAN_ID,
                  name: 'root',
                  kind: 'SPAN_KIND_CLIENT',
                  status: { code: 'STATUS_CODE_OK' },
                },
              ],
            },
          ],
        },
      ],
    });
    expect(span).toMatchObject({
      traceId: TRACE_ID,
      parentSpanId: '',
      kind: 'CLIENT',
      statusCode: 'OK',
      serviceName: undefined,
      attributes: {},
    });
  });

  it('refuses a span kind it does not know rather than guessing', () => {
    const document = { resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'x', kind: 9 }] }] }] };
    expect(() => spansOfOtlpJson(document)).toThrow(/SPAN_KIND_\* value 9/);
  });
});
