import { AggregatorRegistry, register as globalRegistry, type Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  createAuthzMetrics,
  DECISION_DURATION_BUCKETS,
  DEFAULT_MAX_SERIES_PER_METRIC,
} from '../../../src/metrics/authz-metrics.js';
import { MAX_LABEL_VALUE_LENGTH, OTHER_LABEL_VALUE } from '../../../src/metrics/label-budget.js';

interface Sample {
  readonly labels: Record<string, string | number | undefined>;
  readonly value: number;
  readonly metricName?: string;
}

/** The samples of one metric, read the way a scrape would (collect callbacks run). */
async function samplesOf(registry: Registry, name: string): Promise<Sample[]> {
  const metric = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  if (metric === undefined) throw new Error(`no metric ${name} in the registry`);
  return metric.values as Sample[];
}

function valueAt(samples: readonly Sample[], labels: Record<string, string | number>): number | undefined {
  return samples.find((sample) =>
    Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  )?.value;
}

describe('createAuthzMetrics', () => {
  it('registers on a registry of its own, with the default process metrics, never on the global one', async () => {
    const metrics = createAuthzMetrics();

    expect(metrics.registry).not.toBe(globalRegistry);
    const names = (await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'authz_decisions_total',
        'authz_decision_duration_seconds',
        'authz_jwks_fetches_total',
        'authz_policy_reloads_total',
        'authz_policy_info',
        'authz_policy_last_reload_success_timestamp_seconds',
        'authz_policy_file_in_force',
        'authz_policy_findings',
        'process_cpu_user_seconds_total',
        'nodejs_heap_size_used_bytes',
      ]),
    );
    expect(globalRegistry.getSingleMetric('authz_decisions_total')).toBeUndefined();
  });

  it('refuses a cap that is not a positive integer', () => {
    expect(() => createAuthzMetrics({ maxSeriesPerMetric: 0 })).toThrow(RangeError);
    expect(() => createAuthzMetrics({ maxSeriesPerMetric: 2.5 })).toThrow(RangeError);
  });
});

describe('recordDecision', () => {
  it('counts decisions by service, route, outcome and reason', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordDecision({
      service: 'default',
      route: 'GET /balance',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'GET /balance',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'POST /transfer',
      outcome: 'deny',
      reason: 'insufficient_scope',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'POST /transfer',
      outcome: 'would_deny',
      reason: 'insufficient_scope',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: '(none)',
      outcome: 'deny',
      reason: 'no_route',
      durationSeconds: 0,
    });

    const samples = await samplesOf(metrics.registry, 'authz_decisions_total');
    expect(samples).toHaveLength(4);
    expect(valueAt(samples, { route: 'GET /balance', outcome: 'allow', reason: 'allowed' })).toBe(2);
    expect(valueAt(samples, { route: 'POST /transfer', outcome: 'deny', reason: 'insufficient_scope' })).toBe(
      1,
    );
    expect(
      valueAt(samples, { route: 'POST /transfer', outcome: 'would_deny', reason: 'insufficient_scope' }),
    ).toBe(1);
    expect(valueAt(samples, { route: '(none)', outcome: 'deny', reason: 'no_route' })).toBe(1);
    expect(await metrics.registry.getSingleMetricAsString('authz_decisions_total')).toContain(
      'authz_decisions_total{service="default",route="GET /balance",outcome="allow",reason="allowed"} 2',
    );
  });

  it('counts the same route of two services apart, and decisions made before any service under (none)', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordDecision({
      service: 'bank',
      route: 'GET /balance',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'statements',
      route: 'GET /balance',
      outcome: 'deny',
      reason: 'token_audience_mismatch',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: '(none)',
      route: '(none)',
      outcome: 'deny',
      reason: 'no_service',
      durationSeconds: 0,
    });

    const samples = await samplesOf(metrics.registry, 'authz_decisions_total');
    expect(samples).toHaveLength(3);
    expect(valueAt(samples, { service: 'bank', route: 'GET /balance', outcome: 'allow' })).toBe(1);
    expect(valueAt(samples, { service: 'statements', route: 'GET /balance', outcome: 'deny' })).toBe(1);
    expect(valueAt(samples, { service: '(none)', route: '(none)', reason: 'no_service' })).toBe(1);
  });

  it('observes the duration by outcome, in the sub-millisecond to one second buckets', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordDecision({
      service: 'default',
      route: 'r',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0.00005,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'r',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0.003,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'r',
      outcome: 'deny',
      reason: 'token_expired',
      durationSeconds: 2,
    });

    const samples = await samplesOf(metrics.registry, 'authz_decision_duration_seconds');
    const bucket = (outcome: string, le: number | string) =>
      samples.find(
        (sample) =>
          sample.metricName === 'authz_decision_duration_seconds_bucket' &&
          sample.labels.outcome === outcome &&
          sample.labels.le === le,
      )?.value;
    const series = (suffix: string, outcome: string) =>
      samples.find(
        (sample) =>
          sample.metricName === `authz_decision_duration_seconds_${suffix}` &&
          sample.labels.outcome === outcome,
      )?.value;

    expect(DECISION_DURATION_BUCKETS[0]).toBe(0.0001);
    expect(DECISION_DURATION_BUCKETS.at(-1)).toBe(1);
    expect(bucket('allow', 0.0001)).toBe(1);
    expect(bucket('allow', 0.0025)).toBe(1);
    expect(bucket('allow', 0.005)).toBe(2);
    expect(bucket('allow', '+Inf')).toBe(2);
    expect(series('count', 'allow')).toBe(2);
    expect(series('sum', 'allow')).toBeCloseTo(0.00305, 10);
    expect(bucket('deny', 1)).toBe(0);
    expect(bucket('deny', '+Inf')).toBe(1);
    // Outcomes with no decision yet are present at zero.
    expect(series('count', 'would_deny')).toBe(0);
  });

  it('counts a decision with an unusable duration but keeps it out of the histogram', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordDecision({
      service: 'default',
      route: 'r',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: Number.NaN,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'r',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: Infinity,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'r',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: -0.5,
    });

    expect(valueAt(await samplesOf(metrics.registry, 'authz_decisions_total'), { route: 'r' })).toBe(3);
    const text = await metrics.registry.getSingleMetricAsString('authz_decision_duration_seconds');
    expect(text).toContain('authz_decision_duration_seconds_count{outcome="allow"} 1');
    expect(text).toContain('authz_decision_duration_seconds_sum{outcome="allow"} 0');
    expect(text).toContain('authz_decision_duration_seconds_bucket{le="0.0001",outcome="allow"} 1');
  });

  it('folds routes past the cap into (other), keeping the series that existed', async () => {
    const metrics = createAuthzMetrics({ maxSeriesPerMetric: 2 });

    metrics.recordDecision({
      service: 'default',
      route: 'a',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'b',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'c',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'd',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });
    metrics.recordDecision({
      service: 'default',
      route: 'a',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0,
    });

    const samples = await samplesOf(metrics.registry, 'authz_decisions_total');
    expect(samples.map((sample) => sample.labels.route).sort()).toEqual([OTHER_LABEL_VALUE, 'a', 'b']);
    expect(valueAt(samples, { route: 'a' })).toBe(2);
    expect(valueAt(samples, { route: OTHER_LABEL_VALUE, reason: 'allowed' })).toBe(2);
  });

  it('holds the default cap against a flood of distinct routes', async () => {
    const metrics = createAuthzMetrics();

    for (let i = 0; i < DEFAULT_MAX_SERIES_PER_METRIC + 500; i += 1) {
      metrics.recordDecision({
        service: 'default',
        route: `GET /r/${i}`,
        outcome: 'deny',
        reason: 'no_route',
        durationSeconds: 0,
      });
    }

    const samples = await samplesOf(metrics.registry, 'authz_decisions_total');
    expect(samples).toHaveLength(DEFAULT_MAX_SERIES_PER_METRIC + 1);
    expect(valueAt(samples, { route: OTHER_LABEL_VALUE, outcome: 'deny', reason: 'no_route' })).toBe(500);
    expect(samples.reduce((total, sample) => total + sample.value, 0)).toBe(
      DEFAULT_MAX_SERIES_PER_METRIC + 500,
    );
  });
});

describe('recordKeySetFetch', () => {
  it('counts fetches by issuer, outcome and trigger', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordKeySetFetch({ issuer: 'https://idp.example/', outcome: 'ok', trigger: 'initial' });
    metrics.recordKeySetFetch({ issuer: 'https://idp.example/', outcome: 'error', trigger: 'unknown_key' });
    metrics.recordKeySetFetch({ issuer: 'https://idp.example/', outcome: 'error', trigger: 'unknown_key' });

    const samples = await samplesOf(metrics.registry, 'authz_jwks_fetches_total');
    expect(samples).toHaveLength(2);
    expect(valueAt(samples, { issuer: 'https://idp.example/', outcome: 'ok', trigger: 'initial' })).toBe(1);
    expect(
      valueAt(samples, { issuer: 'https://idp.example/', outcome: 'error', trigger: 'unknown_key' }),
    ).toBe(2);
  });

  it('folds issuers past the cap into (other)', async () => {
    const metrics = createAuthzMetrics({ maxSeriesPerMetric: 1 });

    metrics.recordKeySetFetch({ issuer: 'https://one.example/', outcome: 'ok', trigger: 'initial' });
    metrics.recordKeySetFetch({ issuer: 'https://two.example/', outcome: 'ok', trigger: 'initial' });

    const samples = await samplesOf(metrics.registry, 'authz_jwks_fetches_total');
    expect(samples.map((sample) => sample.labels.issuer).sort()).toEqual([
      OTHER_LABEL_VALUE,
      'https://one.example/',
    ]);
  });
});

describe('recordPolicyReload', () => {
  it('counts reloads by result, from zero, and stamps the last success', async () => {
    let nowMs = 1_700_000_000_000;
    const metrics = createAuthzMetrics({ now: () => nowMs });
    const timestamp = async () =>
      (await samplesOf(metrics.registry, 'authz_policy_last_reload_success_timestamp_seconds'))[0]?.value;

    let samples = await samplesOf(metrics.registry, 'authz_policy_reloads_total');
    expect(valueAt(samples, { result: 'ok' })).toBe(0);
    expect(valueAt(samples, { result: 'error' })).toBe(0);
    expect(await timestamp()).toBe(0);

    metrics.recordPolicyReload('ok');
    nowMs += 5_500;
    metrics.recordPolicyReload('error');
    metrics.recordPolicyReload('error');

    samples = await samplesOf(metrics.registry, 'authz_policy_reloads_total');
    expect(valueAt(samples, { result: 'ok' })).toBe(1);
    expect(valueAt(samples, { result: 'error' })).toBe(2);
    expect(await timestamp()).toBe(1_700_000_000);

    metrics.recordPolicyReload('ok');
    expect(await timestamp()).toBe(1_700_000_005.5);
  });
});

describe('recordInitialPolicyLoad', () => {
  it('stamps the last success at start-up, so that a fresh server does not read as stale', async () => {
    const metrics = createAuthzMetrics({ now: () => 1_700_000_000_000 });
    metrics.recordInitialPolicyLoad();
    const [sample] = await samplesOf(metrics.registry, 'authz_policy_last_reload_success_timestamp_seconds');
    expect(sample?.value).toBe(1_700_000_000);
    expect(valueAt(await samplesOf(metrics.registry, 'authz_policy_reloads_total'), { result: 'ok' })).toBe(
      0,
    );
  });
});

describe('setPolicyFileInForce', () => {
  it('is 1 from the start, 0 while a refused file sits on disk, 1 again once it is replaced', async () => {
    const metrics = createAuthzMetrics();
    const value = async () => (await samplesOf(metrics.registry, 'authz_policy_file_in_force'))[0]?.value;
    expect(await value()).toBe(1);
    metrics.setPolicyFileInForce(false);
    expect(await value()).toBe(0);
    metrics.setPolicyFileInForce(true);
    expect(await value()).toBe(1);
  });
});

describe('setPolicyFindings', () => {
  it('counts the findings of the policy in force by code and level, leaves accepted ones out, and replaces the previous counts', async () => {
    const metrics = createAuthzMetrics();
    metrics.setPolicyFindings([
      { code: 'public_catch_all', level: 'error' },
      { code: 'public_any_method', level: 'warning' },
      { code: 'public_any_method', level: 'warning' },
      { code: 'public_catch_all', level: 'error', accepted: { reason: 'a static site' } },
    ]);
    let samples = await samplesOf(metrics.registry, 'authz_policy_findings');
    expect(samples).toHaveLength(2);
    expect(valueAt(samples, { code: 'public_catch_all', level: 'error' })).toBe(1);
    expect(valueAt(samples, { code: 'public_any_method', level: 'warning' })).toBe(2);

    metrics.setPolicyFindings([{ code: 'public_any_method', level: 'warning' }]);
    samples = await samplesOf(metrics.registry, 'authz_policy_findings');
    expect(samples).toEqual([expect.objectContaining({ value: 1 })]);
  });
});

describe('setPolicyInfo', () => {
  it('shows the policy in force as one series of value 1, replacing the previous one', async () => {
    const metrics = createAuthzMetrics();

    metrics.setPolicyInfo({ version: 'sha256:aaa', source: '/etc/authz/policy.yaml' });
    metrics.setPolicyInfo({ version: 'sha256:bbb', source: '/etc/authz/policy.yaml' });

    const samples = await samplesOf(metrics.registry, 'authz_policy_info');
    expect(samples).toEqual([
      expect.objectContaining({
        labels: { version: 'sha256:bbb', source: '/etc/authz/policy.yaml' },
        value: 1,
      }),
    ]);
    expect(await metrics.registry.getSingleMetricAsString('authz_policy_info')).toContain(
      'authz_policy_info{version="sha256:bbb",source="/etc/authz/policy.yaml"} 1',
    );
  });

  it('cuts an overlong source path', async () => {
    const metrics = createAuthzMetrics();

    metrics.setPolicyInfo({ version: 'v1', source: `/${'d'.repeat(MAX_LABEL_VALUE_LENGTH * 2)}` });

    const [sample] = await samplesOf(metrics.registry, 'authz_policy_info');
    expect(String(sample?.labels.source)).toHaveLength(MAX_LABEL_VALUE_LENGTH);
  });
});

describe('readLogLinesDroppedFrom', () => {
  it('counts, from 0, the log lines the destination dropped, read at scrape time', async () => {
    const metrics = createAuthzMetrics();
    const text = async () => metrics.registry.getSingleMetricAsString('authz_log_lines_dropped_total');
    expect(await text()).toContain('# TYPE authz_log_lines_dropped_total counter');
    expect(await text()).toContain('\nauthz_log_lines_dropped_total 0');

    let dropped = 0;
    metrics.readLogLinesDroppedFrom(() => dropped);
    dropped = 120;
    expect((await samplesOf(metrics.registry, 'authz_log_lines_dropped_total'))[0]?.value).toBe(120);
    dropped = 125;
    expect((await samplesOf(metrics.registry, 'authz_log_lines_dropped_total'))[0]?.value).toBe(125);
    expect((await samplesOf(metrics.registry, 'authz_log_lines_dropped_total'))[0]?.value).toBe(125);
  });

  it('is summed over the workers of authz serve --workers, as a counter is', async () => {
    const workers = [createAuthzMetrics(), createAuthzMetrics()];
    workers[0]!.readLogLinesDroppedFrom(() => 3);
    workers[1]!.readLogLinesDroppedFrom(() => 40);

    const cluster = AggregatorRegistry.aggregate(
      await Promise.all(workers.map((worker) => worker.registry.getMetricsAsJSON())),
    );
    expect(await cluster.getSingleMetricAsString('authz_log_lines_dropped_total')).toContain(
      '\nauthz_log_lines_dropped_total 43',
    );
  });
});
