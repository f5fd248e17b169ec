import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createAuthzMetrics } from '../../../src/metrics/authz-metrics.js';
import { OTHER_LABEL_VALUE } from '../../../src/metrics/label-budget.js';

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

/** `{issuer: value}` of a metric labelled by issuer alone. */
async function byIssuer(registry: Registry, name: string): Promise<Record<string, number>> {
  const samples = await samplesOf(registry, name);
  return Object.fromEntries(samples.map((sample) => [String(sample.labels['issuer']), sample.value]));
}

const IDP = 'https://idp.example/';
const PARTNER = 'https://partner.example/';

describe('verified-token cache metrics', () => {
  it('counts hits, misses and evictions by issuer', async () => {
    const metrics = createAuthzMetrics();

    metrics.recordTokenCacheEvent(IDP, 'miss');
    metrics.recordTokenCacheEvent(IDP, 'hit');
    metrics.recordTokenCacheEvent(IDP, 'hit');
    metrics.recordTokenCacheEvent(PARTNER, 'miss');
    metrics.recordTokenCacheEvent(PARTNER, 'eviction');

    expect(await byIssuer(metrics.registry, 'authz_token_cache_hits_total')).toEqual({ [IDP]: 2 });
    expect(await byIssuer(metrics.registry, 'authz_token_cache_misses_total')).toEqual({
      [IDP]: 1,
      [PARTNER]: 1,
    });
    expect(await byIssuer(metrics.registry, 'authz_token_cache_evictions_total')).toEqual({ [PARTNER]: 1 });
  });

  it('folds issuers past the cap into (other), each counter on its own budget', async () => {
    const metrics = createAuthzMetrics({ maxSeriesPerMetric: 1 });

    metrics.recordTokenCacheEvent(IDP, 'hit');
    metrics.recordTokenCacheEvent(PARTNER, 'hit');
    metrics.recordTokenCacheEvent('https://third.example/', 'hit');
    metrics.recordTokenCacheEvent(PARTNER, 'miss');

    expect(await byIssuer(metrics.registry, 'authz_token_cache_hits_total')).toEqual({
      [IDP]: 1,
      [OTHER_LABEL_VALUE]: 2,
    });
    expect(await byIssuer(metrics.registry, 'authz_token_cache_misses_total')).toEqual({ [PARTNER]: 1 });
  });

  it('reads the entries gauge at scrape time from the current reader, dropping issuers no longer there', async () => {
    const metrics = createAuthzMetrics();
    expect(await samplesOf(metrics.registry, 'authz_token_cache_entries')).toEqual([]);

    let sizes = [
      { issuer: IDP, entries: 3 },
      { issuer: PARTNER, entries: 0 },
    ];
    metrics.readTokenCacheEntriesFrom(() => sizes);
    expect(await byIssuer(metrics.registry, 'authz_token_cache_entries')).toEqual({ [IDP]: 3, [PARTNER]: 0 });

    sizes = [{ issuer: IDP, entries: 7 }]; // a reload dropped the partner
    expect(await byIssuer(metrics.registry, 'authz_token_cache_entries')).toEqual({ [IDP]: 7 });
  });
});
