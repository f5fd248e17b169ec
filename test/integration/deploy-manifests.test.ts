import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formats } from '@kubernetes-models/validate';
import { IstioOperator } from '@kubernetes-models/istio/install.istio.io/v1alpha1/IstioOperator';
import { AuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { Ajv, type ValidateFunction } from 'ajv';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import { kustomizeBuild } from '../kit/kustomize.js';

/*
 * Every manifest under deploy/, checked without a cluster (nothing here is applied or run):
 * - parsed as YAML, every document;
 * - each Kubernetes object validated against the schemas of maintained packages: kubernetes-models (core,
 *   apps, policy, networking) and @kubernetes-models/istio (AuthorizationPolicy, IstioOperator) check types,
 *   required fields and enums; .tools/bin/manifest-check (scripts/manifest-check: k8s.io/api and istio.io/api)
 *   decodes them strictly as the API server and istiod do, which also refuses unknown fields (the OpenAPI
 *   schemas of built-in kinds do not forbid them) and checks the mesh config; it alone checks the Prometheus
 *   Operator's PodMonitor and PrometheusRule (decoded into the Operator's Go types); Envoy Gateway's and the Gateway
 *   API's CustomResourceDefinitions (from the github.com/envoyproxy/gateway module) validate SecurityPolicy,
 *   Gateway and HTTPRoute with ajv, unknown fields forbidden as the API server's strict field validation does;
 * - each kustomization rendered with kustomize, and what it renders validated the same way;
 * - the policy the manifests mount compiled by authz's own compiler.
 * Not checked: the API server's own validation rules (name formats, port ranges, selector/template match)
 * beyond what deploy-agreement.test.ts asserts, and the CRDs' CEL rules (x-kubernetes-validations).
 * The tools come from scripts/install-deploy-tools.sh (`npm run deploy-tools:install`, run by `npm test` through `go-tools:install`).
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const deployDir = path.join(repoRoot, 'deploy');
const toolsDir = path.join(repoRoot, '.tools');
const MANIFEST_CHECK = path.join(toolsDir, 'bin', 'manifest-check');
const CRD_DIR = path.join(toolsDir, 'envoy-gateway-crds');

type KubeObject = { apiVersion: string; kind: string; metadata?: { name?: string }; [key: string]: unknown };

function tool(file: string): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run deploy-tools:install`);
  return file;
}

/** Every YAML file under deploy/, relative to it. */
const yamlFiles = (readdirSync(deployDir, { recursive: true }) as string[])
  .filter((file) => /\.ya?ml$/.test(file))
  .map((file) => file.split(path.sep).join('/'))
  .sort();

/** The documents of a YAML text; throws on the first syntax error, naming the source. */
function parseDocuments(text: string, source: string): unknown[] {
  return parseAllDocuments(text).map((document, index) => {
    if (document.errors.length > 0)
      throw new Error(`${source} document ${index}: ${document.errors[0]!.message}`);
    return document.toJS() as unknown;
  });
}

/** What kind of file each one under deploy/ is; every other file there is Kubernetes objects. */
const isKustomization = (file: string) => path.basename(file) === 'kustomization.yaml';
const POLICY_FILES = [
  'policy/policy.yaml',
  'kubernetes-versioned-policy/policy.yaml', // a copy: deploy-agreement
  // Policy directories, one file per owner; each checked against policy.gateway.d/ by deploy-agreement.
  'kubernetes-teams/_gateway.yaml',
  'kubernetes-teams/bank.yaml',
  'kubernetes-teams/statements.yaml',
  'kubernetes-teams-add-team-example/_gateway.yaml',
  'kubernetes-teams-add-team-example/cards.yaml',
];
// Identical to envoy/envoy.yaml and envoy/gateway.yaml: deploy-agreement.
const ENVOY_CONFIG_COPIES = ['kubernetes/envoy.yaml', 'kubernetes-teams/gateway.yaml'];
// Prometheus's own files (a rules file and its unit tests): promtool checks them, monitoring-rules.test.ts.
const PROMETHEUS_FILES = ['monitoring/alerts.rules.yaml', 'monitoring/alerts.test.yaml'];
const isObjectFile = (file: string) =>
  !isKustomization(file) &&
  !POLICY_FILES.includes(file) &&
  !ENVOY_CONFIG_COPIES.includes(file) &&
  !PROMETHEUS_FILES.includes(file);
/** Kustomize Components (kind: Component), which an overlay adds to a base; the rest are Kustomizations. */
const COMPONENTS = ['kubernetes/monitoring/kustomization.yaml'];

/** Renders a kustomization folder under deploy/ with the pinned kustomize. */
function render(dir: string): KubeObject[] {
  return kustomizeBuild<KubeObject>(dir);
}

// --- Schemas of maintained packages (kubernetes-models, @kubernetes-models/istio) -------------------------

interface Model {
  validate(): void;
}
const MODELS: Record<string, new (object: never) => Model> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'security.istio.io/v1/AuthorizationPolicy': AuthorizationPolicy,
  'install.istio.io/v1alpha1/IstioOperator': IstioOperator,
};

const typeOf = (object: KubeObject) => `${object.apiVersion}/${object.kind}`;

/** The Prometheus Operator's kinds: no maintained schema package here, so strict decoding alone checks them. */
const OPERATOR_KINDS = new Set([
  'monitoring.coreos.com/v1/PodMonitor',
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
]);

function modelProblems(object: KubeObject): string[] {
  const Model = MODELS[typeOf(object)]!;
  try {
    new Model(structuredClone(object) as never).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (errors === undefined) throw error;
    return errors.map((problem) => `${problem.instancePath || '/'}: ${problem.message ?? 'invalid'}`);
  }
}

// --- Strict decoding (scripts/manifest-check) ---------------------------------------------------------------

interface Verdict {
  readonly id: string;
  readonly status: 'ok' | 'invalid' | 'unknown_kind';
  readonly errors: string[];
}

function strictProblems(objects: readonly KubeObject[]): string[][] {
  const input = JSON.stringify(objects.map((object, index) => ({ id: String(index), object })));
  const out = execFileSync(tool(MANIFEST_CHECK), { input, encoding: 'utf8', stdio: 'pipe' });
  const verdicts = JSON.parse(out) as Verdict[];
  return verdicts.map((verdict) =>
    verdict.status === 'unknown_kind'
      ? [`manifest-check cannot decode ${typeOf(objects[+verdict.id]!)}`]
      : verdict.errors,
  );
}

// --- CustomResourceDefinitions (Envoy Gateway, Gateway API), with ajv -------------------------------------

type Schema = Record<string, unknown>;

/**
 * The schema as the API server applies it with strict field validation: an object schema that lists its
 * `properties` accepts no others, unless it says `x-kubernetes-preserve-unknown-fields` or has its own
 * `additionalProperties` (a map).
 */
function forbidUnknownFields(schema: Schema): Schema {
  const out: Schema = { ...schema };
  const sub = (value: unknown) => forbidUnknownFields(value as Schema);
  if (schema['properties'] !== undefined) {
    out['properties'] = Object.fromEntries(
      Object.entries(schema['properties'] as Record<string, unknown>).map(([name, value]) => [
        name,
        sub(value),
      ]),
    );
    if (
      schema['additionalProperties'] === undefined &&
      schema['x-kubernetes-preserve-unknown-fields'] !== true
    ) {
      out['additionalProperties'] = false;
    }
  }
  if (typeof schema['additionalProperties'] === 'object')
    out['additionalProperties'] = sub(schema['additionalProperties']);
  if (schema['items'] !== undefined) out['items'] = sub(schema['items']);
  if (schema['not'] !== undefined) out['not'] = sub(schema['not']);
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    if (Array.isArray(schema[key])) out[key] = (schema[key] as unknown[]).map(sub);
  }
  return out;
}

const KUBERNETES_SCHEMA_EXTENSIONS = [
  'x-kubernetes-validations', // CEL rules: not evaluated here
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
];

/** The CRD schemas by `group/version/Kind`, from the files scripts/install-deploy-tools.sh put in .tools/. */
const crdSchemas = (() => {
  let loaded: Map<string, Schema> | undefined;
  return (): Map<string, Schema> => {
    if (loaded !== undefined) return loaded;
    loaded = new Map();
    for (const file of ['securitypolicies.yaml', 'gateway-api-standard.yaml']) {
      const text = readFileSync(tool(path.join(CRD_DIR, file)), 'utf8');
      for (const document of parseDocuments(text, file) as KubeObject[]) {
        if (document?.kind !== 'CustomResourceDefinition') continue;
        const spec = document['spec'] as {
          group: string;
          names: { kind: string };
          versions: { name: string; served: boolean; schema: { openAPIV3Schema: Schema } }[];
        };
        for (const version of spec.versions.filter((candidate) => candidate.served)) {
          loaded.set(`${spec.group}/${version.name}/${spec.names.kind}`, version.schema.openAPIV3Schema);
        }
      }
    }
    return loaded;
  };
})();

const ajv = new Ajv({ allErrors: true, strictTypes: false, strictTuples: false, strictRequired: false });
ajv.addVocabulary(KUBERNETES_SCHEMA_EXTENSIONS);
// The formats kubernetes-models validates with (int32, int64, byte, date-time, ...): the CRDs use the same.
for (const [name, format] of Object.entries(formats)) ajv.addFormat(name, format);
const crdValidators = new Map<string, ValidateFunction>();

function crdProblems(object: KubeObject): string[] {
  const key = typeOf(object);
  let validate = crdValidators.get(key);
  if (validate === undefined) {
    const schema = crdSchemas().get(key);
    if (schema === undefined) return [`no CustomResourceDefinition serves ${key}`];
    validate = ajv.compile(forbidUnknownFields(schema));
    crdValidators.set(key, validate);
  }
  if (validate(object)) return [];
  return (validate.errors ?? []).map((problem) => {
    const detail =
      problem.keyword === 'additionalProperties'
        ? ` (${(problem.params as { additionalProperty: string }).additionalProperty})`
        : problem.keyword === 'enum'
          ? ` (${JSON.stringify((problem.params as { allowedValues: unknown[] }).allowedValues)})`
          : '';
    return `${problem.instancePath || '/'}: ${problem.message ?? 'invalid'}${detail}`;
  });
}

const CRD_KINDS = new Set([
  'gateway.envoyproxy.io/v1alpha1/SecurityPolicy',
  'gateway.networking.k8s.io/v1/Gateway',
  'gateway.networking.k8s.io/v1/HTTPRoute',
]);

/** Every problem each object has, by every validator that applies to its kind; a kind none covers is one. */
function validateObjects(objects: readonly KubeObject[]): string[][] {
  const decoded = objects.map(
    (object) => MODELS[typeOf(object)] !== undefined || OPERATOR_KINDS.has(typeOf(object)),
  );
  const strict = strictProblems(objects.filter((_, index) => decoded[index]));
  let next = 0;
  return objects.map((object, index) => {
    if (decoded[index]) {
      const schema = MODELS[typeOf(object)] === undefined ? [] : modelProblems(object);
      return [...schema, ...strict[next++]!.map((error) => `strict: ${error}`)];
    }
    if (CRD_KINDS.has(typeOf(object))) return crdProblems(object);
    return [`no schema for ${typeOf(object)}: add a validator to this test`];
  });
}

/** Objects with a label saying where they come from, for test names and messages. */
function labelled(objects: readonly KubeObject[], source: string) {
  return objects.map((object) => ({
    label: `${source}: ${object.kind}/${object.metadata?.name ?? '?'}`,
    object,
  }));
}

const sourceObjects = yamlFiles.filter(isObjectFile).flatMap((file) => {
  const documents = parseDocuments(readFileSync(path.join(deployDir, file), 'utf8'), file) as KubeObject[];
  return labelled(documents, file).map((entry) => ({ ...entry, file }));
});
const kustomizations = yamlFiles.filter(isKustomization).map((file) => path.dirname(file));

describe('deploy/: every file parses', () => {
  it.each(yamlFiles)('%s is YAML whose every document parses', (file) => {
    const documents = parseDocuments(readFileSync(path.join(deployDir, file), 'utf8'), file);
    expect(documents.length).toBeGreaterThan(0);
    if (isObjectFile(file)) {
      for (const document of documents as KubeObject[]) {
        expect(typeof document.apiVersion, `${file}: apiVersion`).toBe('string');
        expect(typeof document.kind, `${file}: kind`).toBe('string');
      }
    }
    if (isKustomization(file)) {
      expect(documents).toHaveLength(1);
      expect(documents[0]).toMatchObject(
        COMPONENTS.includes(file)
          ? { apiVersion: 'kustomize.config.k8s.io/v1alpha1', kind: 'Component' }
          : { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization' },
      );
    }
  });

  it('has the three ways to run it, each a kustomization', () => {
    expect(kustomizations).toEqual(
      expect.arrayContaining([
        'kubernetes',
        'kubernetes-versioned-policy',
        'kubernetes-teams',
        'kubernetes-teams-add-team-example',
        'istio',
        'envoy-gateway',
        'authz-service',
        'bank',
        'policy',
      ]),
    );
  });
});

describe('deploy/: each manifest is valid against its schema', () => {
  const problems = validateObjects(sourceObjects.map(({ object }) => object));
  it.each(sourceObjects.map(({ label }, index) => [label, index] as const))('%s', (_label, index) => {
    expect(problems[index]).toEqual([]);
  });
});

describe('deploy/: each kustomization renders, and renders valid objects', () => {
  it.each(kustomizations)('kustomize build deploy/%s', (dir) => {
    const objects = render(path.join(deployDir, dir));
    expect(objects.length).toBeGreaterThan(0);
    const problems = validateObjects(objects);
    const found = labelled(objects, dir).flatMap(({ label }, index) =>
      problems[index]!.map((problem) => `${label}: ${problem}`),
    );
    expect(found).toEqual([]);
  });
});

describe('deploy/policy/policy.yaml, the policy the manifests mount', () => {
  it('compiles with authz (the same check as `authz check-policy`)', () => {
    const file = path.join(deployDir, 'policy', 'policy.yaml');
    expect(() => compilePolicy(readFileSync(file, 'utf8'), file)).not.toThrow();
  });
});

/** A step into an object: a key, an array index, or the array element with this `name`. */
type Step = string | number | { readonly name: string };
/** A change: the field at this path set to a value, or removed (undefined). */
type Edit = readonly [path: readonly Step[], value: unknown];

function stepInto(node: unknown, step: Step): Record<string | number, unknown> {
  const container = node as Record<string | number, unknown> & unknown[];
  if (typeof step !== 'object') return container[step] as Record<string | number, unknown>;
  const found = container.find((item) => (item as { name?: string }).name === step.name);
  if (found === undefined) throw new Error(`no element named ${step.name}`);
  return found as Record<string | number, unknown>;
}

/** A deep copy of the object of this kind in `file` (under deploy/), with `edits` applied. */
function broken(file: string, kind: string, ...edits: Edit[]): KubeObject {
  const found = sourceObjects.find((entry) => entry.file === file && entry.object.kind === kind);
  if (found === undefined) throw new Error(`no ${kind} in deploy/${file}`);
  const copy = structuredClone(found.object);
  for (const [steps, value] of edits) {
    const parent = steps.slice(0, -1).reduce<unknown>(stepInto, copy) as Record<string | number, unknown>;
    const last = steps.at(-1) as string | number;
    if (value === undefined) delete parent[last];
    else parent[last] = value;
  }
  return copy;
}

const AUTHZ_SIDECAR: Step[] = ['spec', 'template', 'spec', 'initContainers', { name: 'authz' }];
const MESH_GRPC_PROVIDER: Step[] = ['spec', 'meshConfig', 'extensionProviders', 0, 'envoyExtAuthzGrpc'];

describe('validation fails on a manifest broken on purpose', () => {
  it('a port given as a string: the schema and strict decoding both refuse it', () => {
    const [problems] = validateObjects([
      broken('kubernetes/deployment.yaml', 'Deployment', [
        [...AUTHZ_SIDECAR, 'ports', 0, 'containerPort'],
        '9001',
      ]),
    ]);
    expect(problems).toContain('/spec/template/spec/initContainers/0/ports/0/containerPort: must be integer');
    expect(
      problems!.some((problem) => problem.startsWith('strict: ') && problem.includes('containerPort')),
    ).toBe(true);
  });

  it('a misspelt field under a Deployment spec: strict decoding refuses it (the OpenAPI schema does not)', () => {
    const deployment = broken('kubernetes/deployment.yaml', 'Deployment');
    const readinessProbe = [...AUTHZ_SIDECAR, 'readinessProbe'].reduce<unknown>(stepInto, deployment);
    const object = broken(
      'kubernetes/deployment.yaml',
      'Deployment',
      [['spec', 'replica'], 3],
      [[...AUTHZ_SIDECAR, 'readinesProbe'], readinessProbe],
    );
    expect(modelProblems(object)).toEqual([]);
    expect(validateObjects([object])[0]!.sort()).toEqual([
      'strict: unknown field "spec.replica"',
      'strict: unknown field "spec.template.spec.initContainers[0].readinesProbe"',
    ]);
  });

  it('an unknown field under a SecurityPolicy spec, and a status the CRD does not allow', () => {
    const [problems] = validateObjects([
      broken(
        'envoy-gateway/security-policy.yaml',
        'SecurityPolicy',
        [['spec', 'extAuth', 'failClosed'], true],
        [['spec', 'extAuth', 'statusOnError'], 299],
      ),
    ]);
    expect(problems).toContain('/spec/extAuth: must NOT have additional properties (failClosed)');
    expect(
      problems!.some((problem) => problem.startsWith('/spec/extAuth/statusOnError: must be equal to one of')),
    ).toBe(true);
  });

  it('a misspelt field in a PodMonitor: strict decoding into the Operator types refuses it', () => {
    const [problems] = validateObjects([
      broken(
        'kubernetes/monitoring/pod-monitor.yaml',
        'PodMonitor',
        [['spec', 'podMetricsEndpoints', 0, 'intervall'], '30s'],
        [['spec', 'podMetricsEndpoints', 0, 'interval'], undefined],
      ),
    ]);
    expect(problems).toEqual(['strict: unknown field "spec.podMetricsEndpoints[0].intervall"']);
  });

  it('an HTTPRoute backend without a port number', () => {
    const [problems] = validateObjects([
      broken('envoy-gateway/gateway.yaml', 'HTTPRoute', [
        ['spec', 'rules', 0, 'backendRefs', 0, 'port'],
        'http',
      ]),
    ]);
    expect(problems).toContain('/spec/rules/0/backendRefs/0/port: must be integer');
  });

  it('a mesh config with a misspelt field or a status given as a number: istiod would refuse both', () => {
    const [misspelt, numeric] = validateObjects([
      broken(
        'istio/mesh-config.yaml',
        'IstioOperator',
        [[...MESH_GRPC_PROVIDER, 'failOpen'], undefined],
        [[...MESH_GRPC_PROVIDER, 'failopen'], false],
      ),
      broken('istio/mesh-config.yaml', 'IstioOperator', [[...MESH_GRPC_PROVIDER, 'statusOnError'], 503]),
    ]);
    // protobuf-go follows "proto:" with a space or a no-break space, at random: match neither.
    expect(misspelt).toEqual([expect.stringMatching(/^strict: proto:.*unknown field "failopen"/)]);
    expect(numeric).toEqual([
      expect.stringMatching(/^strict: proto:.*invalid value for string field statusOnError/),
    ]);
  });

  it('an AuthorizationPolicy action Istio does not have', () => {
    const [problems] = validateObjects([
      broken('istio/authorization-policy.yaml', 'AuthorizationPolicy', [['spec', 'action'], 'EXTERNAL']),
    ]);
    expect(problems).toContain('/spec/action: must be equal to one of the allowed values');
    expect(problems!.some((problem) => problem.startsWith('strict: proto:'))).toBe(true);
  });

  it('a kustomization with an unknown field: kustomize refuses to render it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deploy-kustomization-'));
    try {
      writeFileSync(
        path.join(dir, 'kustomization.yaml'),
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresource: [deployment.yaml]\n',
      );
      expect(() => render(dir)).toThrow(/resource/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
