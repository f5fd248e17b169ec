import type { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing } from '../../../src/authn/key-ring.js';
import { createAuthzMetrics } from '../../../src/metrics/authz-metrics.js';
import { OTHER_LABEL_VALUE } from '../../../src/metrics/label-budget.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { DEMO_ISSUER, demoPolicyText } from '../../kit/inline-policy.js';
import { createKeySetFetch, recordWaits, settle } from '../../kit/key-set-fetch.js';
import { createManualClock } from '../../kit/manual-clock.js';
import { generateTestKey, type TestKey } from '../../kit/tokens.js';

interface Sample {
  readonly labels: Record<string, string | number | undefined>;
  readonly value: number;
}

/** The samples of one metric, read the way a scrape would (collect callbacks run). */
async function samplesOf(registry: Registry, name: string): Promise<Sample[]> {
  const metric = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  if (metric === undefined) throw new Error(`no metric ${name} in the registry`);
  return metric.values as Sample[];
}

/** `{"label=value,...": sample value}` of a metric, label names in alphabetical order. */
async function seriesOf(registry: Registry, name: string): Promise<Record<string, number>> {
  const samples = await samplesOf(registry, name);
  return Object.fromEntries(
    samples.map((sample) => [
      Object.entries(sample.labels)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([label, value]) => `${label}=${String(value)}`)
        .join(','),
      sample.value,
    ]),
  );
}

const IDP = 'https://idp.example/';
const PARTNER = 'https://partner.example/';

describe('authz_jwks_keys_rejected_total', () => {
  it('counts keys left out of a fetched set by issuer and reason', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordKeyRejected(IDP, 'not_importable');
    metrics.recordKeyRejected(IDP, 'not_importable');
    metrics.recordKeyRejected(IDP, 'key_too_short');
    metrics.recordKeyRejected(PARTNER, 'private_key');

    expect(await seriesOf(metrics.registry, 'authz_jwks_keys_rejected_total')).toEqual({
      [`issuer=${IDP},reason=not_importable`]: 2,
      [`issuer=${IDP},reason=key_too_short`]: 1,
      [`issuer=${PARTNER},reason=private_key`]: 1,
    });
  });

  it('shows nothing until a key is rejected', async () => {
    const metrics = createAuthzMetrics();

    expect(await samplesOf(metrics.registry, 'authz_jwks_keys_rejected_total')).toEqual([]);
  });

  it('folds issuers past the cap into (other), keeping every reason', async () => {
    const metrics = createAuthzMetrics({ maxSeriesPerMetric: 1 });

    metrics.recordKeyRejected(IDP, 'not_importable');
    metrics.recordKeyRejected(PARTNER, 'private_key');
    metrics.recordKeyRejected('https://third.example/', 'key_too_short');
    metrics.recordKeyRejected('https://fourth.example/', 'key_too_short');

    expect(await seriesOf(metrics.registry, 'authz_jwks_keys_rejected_total')).toEqual({
      [`issuer=${IDP},reason=not_importable`]: 1,
      [`issuer=${OTHER_LABEL_VALUE},reason=private_key`]: 1,
      [`issuer=${OTHER_LABEL_VALUE},reason=key_too_short`]: 2,
    });
  });
});

describe('authz_jwks_keys_usable', () => {
  it('reads at scrape time from the current reader: 1 usable, 0 not, dropping issuers no longer there', async () => {
    const metrics = createAuthzMetrics();
    expect(await samplesOf(metrics.registry, 'authz_jwks_keys_usable')).toEqual([]);

    let usability = [
      { issuer: IDP, usable: true },
      { issuer: PARTNER, usable: false },
    ];
    metrics.readKeyUsabilityFrom(() => usability);
    expect(await seriesOf(metrics.registry, 'authz_jwks_keys_usable')).toEqual({
      [`issuer=${IDP}`]: 1,
      [`issuer=${PARTNER}`]: 0,
    });

    usability = [{ issuer: IDP, usable: false }]; // a reload dropped the partner; the IdP's keys went stale
    expect(await seriesOf(metrics.registry, 'authz_jwks_keys_usable')).toEqual({ [`issuer=${IDP}`]: 0 });
  });

  it('replaces an earlier reader', async () => {
    const metrics = createAuthzMetrics();

    metrics.readKeyUsabilityFrom(() => [{ issuer: IDP, usable: false }]);
    metrics.readKeyUsabilityFrom(() => [{ issuer: PARTNER, usable: true }]);

    expect(await seriesOf(metrics.registry, 'authz_jwks_keys_usable')).toEqual({ [`issuer=${PARTNER}`]: 1 });
  });
});

describe('authz_check_faults_total', () => {
  it('counts Check faults by kind', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordCheckFault('ERR_JWKS_FETCH_FAILED');
    metrics.recordCheckFault('TypeError');
    metrics.recordCheckFault('TypeError');

    expect(await seriesOf(metrics.registry, 'authz_check_faults_total')).toEqual({
      'kind=ERR_JWKS_FETCH_FAILED': 1,
      'kind=TypeError': 2,
    });
  });

  it('folds kinds past the cap into (other), keeping the series that existed', async () => {
    const metrics = createAuthzMetrics({ maxSeriesPerMetric: 1 });

    metrics.recordCheckFault('TypeError');
    metrics.recordCheckFault('RangeError');
    metrics.recordCheckFault('SyntaxError');
    metrics.recordCheckFault('TypeError');

    expect(await seriesOf(metrics.registry, 'authz_check_faults_total')).toEqual({
      'kind=TypeError': 2,
      [`kind=${OTHER_LABEL_VALUE}`]: 2,
    });
  });
});

describe('authz_checks_in_flight', () => {
  it('reads the Checks in flight at scrape time, from the last reader given', async () => {
    const metrics = createAuthzMetrics();
    expect(await seriesOf(metrics.registry, 'authz_checks_in_flight')).toEqual({ '': 0 });

    let inFlight = 3;
    metrics.readChecksInFlightFrom(() => inFlight);
    expect(await seriesOf(metrics.registry, 'authz_checks_in_flight')).toEqual({ '': 3 });
    inFlight = 0;
    expect(await seriesOf(metrics.registry, 'authz_checks_in_flight')).toEqual({ '': 0 });
  });
});

describe('key metrics wired to a key ring, as the server wires them', () => {
  let good: TestKey;

  beforeAll(async () => {
    good = await generateTestKey('key-1');
  });

  it('shows the keys usable once fetched and not past jwks_max_stale, and counts each rejected key once per set', async () => {
    const metrics = createAuthzMetrics();
    const clock = createManualClock();
    const fetch = createKeySetFetch([
      good.publicJwk,
      { ...good.publicJwk, kid: 'enc-1', use: 'enc' },
      { ...good.publicJwk, kid: 'private-1', d: 'AAAA' },
    ]);
    const policy = compilePolicy(
      demoPolicyText([], { issuerSettings: { jwks_cache_ttl: 60, jwks_max_stale: '5m' } }),
      'policy.yaml',
    );
    const ring = createKeyRing(policy, {
      fetchKeySet: fetch.fetch,
      now: clock.now,
      random: () => 0,
      waitAtMost: recordWaits('until_done').waitAtMost,
      onKeyRejected: (event) => metrics.recordKeyRejected(event.issuer, event.reason),
    });
    metrics.readKeyUsabilityFrom(() => ring.usability());
    const usable = async () =>
      (await seriesOf(metrics.registry, 'authz_jwks_keys_usable'))[`issuer=${DEMO_ISSUER}`];

    expect(await usable()).toBe(0);
    await ring.prefetch();
    expect(await usable()).toBe(1);

    clock.advance(45_000); // the background refresh: the same set again
    ring.refreshIfDue();
    await settle();
    expect(fetch.calls).toBe(2);

    fetch.failWith(503);
    clock.advance(5 * 60_000);
    expect(await usable()).toBe(1); // jwks_max_stale since the last success, not past it
    clock.advance(1);
    expect(await usable()).toBe(0);

    expect(await seriesOf(metrics.registry, 'authz_jwks_keys_rejected_total')).toEqual({
      [`issuer=${DEMO_ISSUER},reason=not_a_signing_key`]: 1,
      [`issuer=${DEMO_ISSUER},reason=private_key`]: 1,
    });
  });
});
