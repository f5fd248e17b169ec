import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/create-logger.js';
import { createAuthzMetrics, type AuthzMetrics } from '../../src/metrics/authz-metrics.js';
import { startMetricsServer, type RunningMetricsServer } from '../../src/metrics/metrics-server.js';

/*
 * The scrape endpoint over real HTTP on a free loopback port: what Prometheus sees, the probes, the refusals,
 * and that two metric sets in one process (as in these tests) never count into each other.
 */

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function call(port: number, method: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, method, path, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe('metrics server', () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    destination: {
      write: (chunk: string) => {
        for (const line of chunk.split('\n'))
          if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  let metrics: AuthzMetrics;
  let server: RunningMetricsServer;

  beforeAll(async () => {
    metrics = createAuthzMetrics();
    server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, logger });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('binds a free port and says so in one log line', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 30, event: 'metrics_started', port: server.port }),
    );
  });

  it('serves the registry in the Prometheus text format on GET /metrics', async () => {
    metrics.recordDecision({
      service: 'default',
      route: 'GET /balance',
      outcome: 'allow',
      reason: 'allowed',
      durationSeconds: 0.0002,
    });
    metrics.recordKeySetFetch({ issuer: 'https://idp.example/', outcome: 'ok', trigger: 'initial' });
    metrics.recordPolicyReload('ok');
    metrics.setPolicyInfo({ version: 'sha256:abc', source: 'policy.yaml' });

    const reply = await call(server.port, 'GET', '/metrics');

    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      'authz_decisions_total',
      'authz_decision_duration_seconds_bucket',
      'authz_jwks_fetches_total',
      'authz_policy_reloads_total',
      'authz_policy_info',
      'authz_policy_last_reload_success_timestamp_seconds',
      'process_cpu_user_seconds_total',
    ]) {
      expect(reply.body).toContain(`# TYPE ${name.replace(/_bucket$/, '')} `);
    }
    expect(reply.body).toContain(
      'authz_decisions_total{service="default",route="GET /balance",outcome="allow",reason="allowed"} 1',
    );
    expect(reply.body).toContain('authz_policy_info{version="sha256:abc",source="policy.yaml"} 1');
  });

  it('ignores a query string on /metrics', async () => {
    const reply = await call(server.port, 'GET', '/metrics?name[]=authz_decisions_total');

    expect(reply.status).toBe(200);
    expect(reply.body).toContain('authz_decisions_total');
  });

  it('answers the health probe with ok', async () => {
    const reply = await call(server.port, 'GET', '/healthz');

    expect(reply.status).toBe(200);
    expect(reply.body).toBe('ok');
  });

  it.each(['/', '/metric', '/metrics/', '/favicon.ico'])('answers 404 for %s', async (path) => {
    expect((await call(server.port, 'GET', path)).status).toBe(404);
  });

  it.each([
    ['POST', '/metrics'],
    ['PUT', '/metrics'],
    ['DELETE', '/healthz'],
    ['HEAD', '/metrics'],
  ])('answers 405 with Allow: GET for %s %s', async (method, path) => {
    const reply = await call(server.port, method, path);

    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('GET');
  });

  it('keeps two metric sets apart', async () => {
    const first = createAuthzMetrics();
    const second = createAuthzMetrics();
    const other = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: second.registry, logger });
    try {
      first.recordDecision({
        service: 'default',
        route: 'only-first',
        outcome: 'deny',
        reason: 'no_route',
        durationSeconds: 0,
      });
      first.setPolicyInfo({ version: 'first', source: 'a.yaml' });

      const firstText = await first.registry.metrics();
      const secondReply = await call(other.port, 'GET', '/metrics');

      expect(first.registry).not.toBe(second.registry);
      expect(firstText).toContain('route="only-first"');
      expect(secondReply.status).toBe(200);
      expect(secondReply.body).not.toContain('only-first');
      expect(secondReply.body).not.toContain('version="first"');
      expect(secondReply.body).toContain('process_cpu_user_seconds_total');
    } finally {
      await other.close();
    }
  });

  it('refuses to start on a port already in use', async () => {
    await expect(
      startMetricsServer({ host: '127.0.0.1', port: server.port, registry: metrics.registry, logger }),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
