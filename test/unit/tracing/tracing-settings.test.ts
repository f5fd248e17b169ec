import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import { TRACING_DEFAULTS, tracingSettings } from '../../../src/tracing/tracing-settings.js';

const on = (env: Record<string, string>) => {
  const settings = tracingSettings(env);
  if (!settings.enabled) throw new Error(`tracing should be on for ${JSON.stringify(env)}`);
  return settings;
};

const refusal = (env: Record<string, string>): string => {
  try {
    tracingSettings(env);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
};

describe('tracingSettings (the standard OpenTelemetry variables)', () => {
  it.each([
    ['nothing set', {}],
    ['only a service name', { OTEL_SERVICE_NAME: 'authz-eu' }],
    ['exporter none', { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }],
    ['the SDK disabled', { OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }],
    [
      'the SDK disabled (any case)',
      { OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' },
    ],
    ['empty values', { OTEL_TRACES_EXPORTER: '', OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }],
  ])('is off unless configured: %s', (_name, env) => {
    expect(tracingSettings(env)).toEqual({ enabled: false });
  });

  it('is on with OTEL_TRACES_EXPORTER=otlp, with the specification defaults', () => {
    expect(on({ OTEL_TRACES_EXPORTER: 'otlp' })).toEqual({
      enabled: true,
      protocol: 'http/protobuf',
      url: 'http://localhost:4318/v1/traces',
      endpoint: 'http://localhost:4318/v1/traces',
      serviceName: undefined,
      resourceAttributes: undefined,
      sampler: 'parentbased_always_on',
      ratio: 1,
      batch: {
        maxQueueSize: TRACING_DEFAULTS.maxQueueSize,
        maxExportBatchSize: TRACING_DEFAULTS.maxExportBatchSize,
        scheduleDelayMs: TRACING_DEFAULTS.scheduleDelayMs,
        exportTimeoutMs: TRACING_DEFAULTS.exportTimeoutMs,
      },
    });
  });

  it('is on with only an endpoint set; the shared one gets /v1/traces, the traces one is used as is', () => {
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).url).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4318/prefix/' }).url).toBe(
      'https://collector:4318/prefix/v1/traces',
    );
    expect(
      on({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:9999/custom',
      }).url,
    ).toBe('http://traces:9999/custom');
  });

  it('logs the endpoint without credentials, and never echoes a malformed one', () => {
    const settings = on({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:s3cret@collector:4318' });
    expect(settings.url).toContain('s3cret');
    expect(settings.endpoint).toBe('https://collector:4318/v1/traces');
    const message = refusal({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url s3cret' });
    expect(message).toContain('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    expect(message).not.toContain('s3cret');
  });

  it('takes both OTLP encodings over HTTP; the traces protocol beats the shared one', () => {
    expect(on({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).protocol).toBe(
      'http/json',
    );
    expect(
      on({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      }).protocol,
    ).toBe('http/protobuf');
  });

  it.each([
    'parentbased_always_on',
    'parentbased_always_off',
    'parentbased_traceidratio',
    'always_on',
    'always_off',
    'traceidratio',
  ])('takes the sampler %s', (sampler) => {
    expect(on({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: sampler }).sampler).toBe(sampler);
  });

  it('reads the ratio of a ratio sampler', () => {
    const settings = on({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.01',
    });
    expect(settings.ratio).toBe(0.01);
  });

  it('reads the batch processor variables, within bounds', () => {
    expect(
      on({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_BSP_MAX_QUEUE_SIZE: '100',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10',
        OTEL_BSP_SCHEDULE_DELAY: '0',
        OTEL_BSP_EXPORT_TIMEOUT: '1000',
      }).batch,
    ).toEqual({ maxQueueSize: 100, maxExportBatchSize: 10, scheduleDelayMs: 0, exportTimeoutMs: 1000 });
    // A queue smaller than the default batch makes the batch smaller too.
    expect(on({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_MAX_QUEUE_SIZE: '8' }).batch.maxExportBatchSize).toBe(
      8,
    );
  });

  it.each([
    [{ OTEL_SDK_DISABLED: 'yes' }, 'OTEL_SDK_DISABLED'],
    [{ OTEL_TRACES_EXPORTER: 'console' }, 'standard output'],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, 'OTEL_TRACES_EXPORTER: "zipkin"'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'grpc is not supported'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' }, 'TRACES_PROTOCOL'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector:21' }, 'not http: or https:'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'OTEL_TRACES_SAMPLER'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER_ARG: '1.5' }, 'from 0 to 1'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER_ARG: 'half' }, 'from 0 to 1'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_MAX_QUEUE_SIZE: '0' }, 'OTEL_BSP_MAX_QUEUE_SIZE'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_MAX_QUEUE_SIZE: '10000000' }, 'OTEL_BSP_MAX_QUEUE_SIZE'],
    [
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_MAX_QUEUE_SIZE: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '11' },
      'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
    ],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_SCHEDULE_DELAY: '-1' }, 'OTEL_BSP_SCHEDULE_DELAY'],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_EXPORT_TIMEOUT: '5s' }, 'OTEL_BSP_EXPORT_TIMEOUT'],
  ])('refuses %j, naming the variable', (env, expected) => {
    expect(refusal(env)).toContain(expected);
  });

  it('refuses a bad value even when tracing would be off, so a typo never hides', () => {
    expect(refusal({ OTEL_TRACES_EXPORTER: 'otpl' })).toContain('"otpl"');
  });
});
