import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kustomizeBuild } from '../kit/kustomize.js';

/*
 * deploy/kubernetes/monitoring, the Prometheus Operator's scrape of the sidecar as a kustomize Component,
 * rendered the way an operator adds it: an overlay of the base with the component. Its objects are validated
 * with the other manifests (deploy-manifests.test.ts); here, that it scrapes what the base runs.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

interface Container {
  readonly name: string;
  readonly args?: readonly string[];
  readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[];
}
interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
  readonly spec: Record<string, unknown>;
}

let overlay: string;
let withComponent: KubeObject[];

beforeAll(() => {
  overlay = mkdtempSync(path.join(tmpdir(), 'authz-monitoring-overlay-'));
  const from = (dir: string) => path.relative(overlay, path.join(repoRoot, dir));
  writeFileSync(
    path.join(overlay, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      `resources: [${from('deploy/kubernetes')}]`,
      `components: [${from('deploy/kubernetes/monitoring')}]`,
      '',
    ].join('\n'),
  );
  withComponent = kustomizeBuild<KubeObject>(overlay);
});

afterAll(() => {
  if (overlay !== undefined) rmSync(overlay, { recursive: true, force: true });
});

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

describe('deploy/kubernetes with the monitoring component', () => {
  it('adds one PodMonitor, and the base alone has no Prometheus Operator object', () => {
    const operatorKinds = (objects: KubeObject[]) =>
      objects.filter((object) => object.apiVersion.startsWith('monitoring.coreos.com/')).map((o) => o.kind);
    expect(operatorKinds(withComponent)).toEqual(['PodMonitor']);
    expect(operatorKinds(kustomizeBuild<KubeObject>(path.join(repoRoot, 'deploy', 'kubernetes')))).toEqual(
      [],
    );
  });

  it("selects the authz Pods and scrapes the port on which authz serve's --metrics-listen serves /metrics", () => {
    const monitor = withComponent.find((object) => object.kind === 'PodMonitor')!;
    const spec = monitor.spec as {
      selector: { matchLabels: Record<string, string> };
      podMetricsEndpoints: { port: string; path: string }[];
    };
    const selected = withComponent.filter(
      (object) =>
        object.kind === 'Deployment' &&
        matches(
          spec.selector.matchLabels,
          (object.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata
            .labels,
        ),
    );
    expect(selected.map((deployment) => deployment.metadata.name)).toEqual(['bank']);
    const podSpec = (selected[0]!.spec as { template: { spec: Record<string, Container[] | undefined> } })
      .template.spec;
    const containers = [...(podSpec['initContainers'] ?? []), ...(podSpec['containers'] ?? [])];

    expect(spec.podMetricsEndpoints).toHaveLength(1);
    const endpoint = spec.podMetricsEndpoints[0]!;
    expect(endpoint.path).toBe('/metrics');
    const owners = containers.filter((container) =>
      (container.ports ?? []).some((port) => port.name === endpoint.port),
    );
    expect(owners.map((container) => container.name)).toEqual(['authz']);
    const port = owners[0]!.ports!.find((candidate) => candidate.name === endpoint.port)!.containerPort;
    const args = owners[0]!.args ?? [];
    expect(args[0]).toBe('serve');
    expect(args[args.indexOf('--metrics-listen') + 1]).toBe(`0.0.0.0:${port}`);
  });

  it("is admitted by the base's NetworkPolicy for those Pods", () => {
    const policy = withComponent.find((object) => object.kind === 'NetworkPolicy')!;
    const ports = (policy.spec as { ingress: { ports: { port: string | number }[] }[] }).ingress.flatMap(
      (rule) => rule.ports.map((port) => port.port),
    );
    expect(ports).toContain('metrics');
  });
});
