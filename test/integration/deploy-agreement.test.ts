import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { serveConfig, SERVE_DEFAULTS } from '../../src/cli/serve-config.js';
import { bankConfig } from '../../src/demo/bank/bank-config.js';
import { SERVICE_EXTENSION } from '../../src/envoy/request-facts-from-check.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import { loadPolicy } from '../../src/policy/load-policy.js';
import { policyChange } from '../../src/policy/policy-change.js';
import { judgePolicyDirectory } from '../../src/policy/policy-directory.js';
import { parsePolicyTestFile } from '../../src/policy-tools/policy-test-file.js';
import { runPolicyTests } from '../../src/policy-tools/run-policy-tests.js';
import { AUTHORIZATION_SERVICE } from '../../src/server/authz-server.js';
import { argsOf, readDockerfile, stageNamed } from '../kit/dockerfile.js';
import { kustomizeBuild } from '../kit/kustomize.js';
import { at, FIRST_ENDPOINT_SOCKET } from '../kit/parsed-tree.js';

/*
 * The manifests under deploy/ say the same as the files they were made from: the ports, addresses and paths
 * of envoy/envoy.yaml, the Dockerfile's sidecar image (its CMD, user and EXPOSE) and docker-compose.yml; the
 * policy's file name and folder; Envoy's config byte for byte; the Istio and Envoy Gateway wiring (provider
 * name, Service, port, timeout, fail-closed; Envoy Gateway's policy on the Gateway, the service it names, the
 * headers every route keeps from the upstream) across files; the NetworkPolicies in front of the authz Pods;
 * the DPoP nonce key every authz container reads from the Secret it cannot start without; the versioned-policy
 * overlay's hashed ConfigMap; the teams overlay's policy directory (one ConfigMap per owner in one projected
 * volume, the files policy.gateway.d/'s, Envoy's config envoy/gateway.yaml routing every host they claim) and
 * its add-a-team example; policy.gateway.d/ against policy.gateway.yaml; and every container's restricted
 * security settings and resources. Checked on what kustomize renders (the
 * pinned binary from scripts/install-deploy-tools.sh), which is what a cluster would be given.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const deployDir = path.join(repoRoot, 'deploy');

type Json = Record<string, unknown>;

function render(dir: string): Json[] {
  return kustomizeBuild<Json>(path.join(deployDir, dir));
}

function one(objects: readonly Json[], kind: string, name: string): Json {
  const found = objects.filter(
    (object) => object['kind'] === kind && at(object, 'metadata', 'name') === name,
  );
  expect(found, `exactly one ${kind}/${name}`).toHaveLength(1);
  return found[0]!;
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Json;
  livenessProbe?: Json;
  startupProbe?: Json;
  resources?: { requests?: Json; limits?: Json };
  securityContext?: Json;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  env?: { name: string; value?: string }[];
}

function containersOf(deployment: Json): Container[] {
  const spec = at(deployment, 'spec', 'template', 'spec') as Json;
  return [...((spec['initContainers'] as Container[]) ?? []), ...((spec['containers'] as Container[]) ?? [])];
}

function container(deployment: Json, name: string): Container {
  const found = containersOf(deployment).find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no container ${name}`);
  return found;
}

/** The value after `flag` in an argument list. */
function flag(args: readonly string[] | undefined, name: string): string | undefined {
  const index = (args ?? []).indexOf(name);
  return index === -1 ? undefined : args![index + 1];
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

// --- The sources of truth ---------------------------------------------------------------------------------

const envoyYamlText = readFileSync(path.join(repoRoot, 'envoy', 'envoy.yaml'), 'utf8');
const envoyYaml = parse(envoyYamlText) as Json;
const envoyVersion = readFileSync(path.join(repoRoot, 'envoy', 'VERSION'), 'utf8').trim();
const listener = at(envoyYaml, 'static_resources', 'listeners', 0) as Json;
const hcm = at(listener, 'filter_chains', 0, 'filters', 0, 'typed_config') as Json;
const extAuthz = (at(hcm, 'http_filters') as Json[]).find(
  (filter) => filter['name'] === 'envoy.filters.http.ext_authz',
)!;
const clusterAddress = (name: string) => {
  const cluster = (at(envoyYaml, 'static_resources', 'clusters') as Json[]).find((c) => c['name'] === name)!;
  const socket = at(cluster, ...FIRST_ENDPOINT_SOCKET);
  return `${at(socket, 'address') as string}:${at(socket, 'port_value') as number}`;
};
const ENVOY = {
  listenerPort: at(listener, 'address', 'socket_address', 'port_value') as number,
  authz: clusterAddress('authz'), // 127.0.0.1:9001
  bank: clusterAddress('bank'), // 127.0.0.1:8080
  adminHost: at(envoyYaml, 'admin', 'address', 'socket_address', 'address') as string,
  timeout: at(extAuthz, 'typed_config', 'grpc_service', 'timeout') as string,
  failureModeAllow: at(extAuthz, 'typed_config', 'failure_mode_allow') as boolean,
  statusOnError: at(extAuthz, 'typed_config', 'status_on_error', 'code') as string,
  /** The request headers the router removes before the upstream, after ext_authz has read them. */
  removedUpstream: at(hcm, 'route_config', 'virtual_hosts', 0, 'request_headers_to_remove') as string[],
  /** The paths of routes with ext_authz disabled (the health check). */
  uncheckedPaths: (at(hcm, 'route_config', 'virtual_hosts', 0, 'routes') as Json[])
    .filter(
      (route) => at(route, 'typed_per_filter_config', 'envoy.filters.http.ext_authz', 'disabled') === true,
    )
    .map((route) => at(route, 'match', 'path') as string),
};
/** Envoy's HTTP status names (envoy.type.v3.StatusCode) for the codes used here. */
const STATUS_CODES: Record<string, number> = { ServiceUnavailable: 503, Forbidden: 403 };

const sidecarStage = stageNamed(readDockerfile(path.join(repoRoot, 'Dockerfile')), 'sidecar');
const DOCKERFILE = {
  cmd: JSON.parse(argsOf(sidecarStage, 'CMD').at(-1)!) as string[],
  expose: argsOf(sidecarStage, 'EXPOSE').flatMap((ports) => ports.split(/\s+/)),
  user: argsOf(sidecarStage, 'USER').at(-1),
};

const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, { command?: string[]; image?: string; ports?: string[]; volumes?: string[] }>;
};

const kubernetes = render('kubernetes');
const pod = one(kubernetes, 'Deployment', 'bank');
const authz = container(pod, 'authz');
const envoy = container(pod, 'envoy');
const bank = container(pod, 'bank');
const podVolumes = at(pod, 'spec', 'template', 'spec', 'volumes') as {
  name: string;
  configMap?: { name: string };
}[];

/** The ConfigMap data key a container sees at `file` through its volume mounts (no subPath allowed). */
function configMapFileAt(objects: readonly Json[], deployment: Json, owner: Container, file: string) {
  const mount = (owner.volumeMounts ?? []).find(
    (candidate) => candidate.mountPath === path.posix.dirname(file),
  );
  if (mount === undefined) return undefined;
  const volumes = at(deployment, 'spec', 'template', 'spec', 'volumes') as {
    name: string;
    configMap?: { name: string };
  }[];
  const configMapName = volumes.find((volume) => volume.name === mount.name)?.configMap?.name;
  const configMap = objects.find(
    (object) => object['kind'] === 'ConfigMap' && at(object, 'metadata', 'name') === configMapName,
  );
  return {
    mount,
    text: at(configMap, 'data', path.posix.basename(file)) as string | undefined,
  };
}

/** What is wrong with an authz container's probes, listen address and ports; [] when all agree. */
function authzContainerProblems(owner: Container): string[] {
  const problems: string[] = [];
  const listen = flag(owner.args, '--listen');
  if (listen === undefined || portOf(listen) !== portOf(ENVOY.authz)) {
    problems.push(`--listen ${listen} is not on Envoy's authz port ${portOf(ENVOY.authz)}`);
  }
  const grpcPort = owner.ports?.find((port) => port.name === 'grpc')?.containerPort;
  if (grpcPort !== portOf(ENVOY.authz))
    problems.push(`containerPort grpc ${grpcPort} is not ${portOf(ENVOY.authz)}`);
  const expected: Record<string, string> = {
    startupProbe: '',
    readinessProbe: AUTHORIZATION_SERVICE,
    livenessProbe: '',
  };
  for (const [probe, service] of Object.entries(expected)) {
    const grpc = at(owner, probe, 'grpc') as { port?: number; service?: string } | undefined;
    if (grpc?.port !== portOf(ENVOY.authz))
      problems.push(`${probe} gRPC port ${grpc?.port} is not the listen port`);
    if (grpc?.service !== service)
      problems.push(`${probe} asks for service "${grpc?.service}", not "${service}"`);
  }
  return problems;
}

describe('deploy/kubernetes: the Pod runs what envoy/envoy.yaml, the Dockerfile and compose describe', () => {
  it("mounts Envoy's config, byte for byte envoy/envoy.yaml, where Envoy's args and compose read it", () => {
    expect(
      readFileSync(path.join(deployDir, 'kubernetes', 'envoy.yaml'), 'utf8'),
      'cp envoy/envoy.yaml deploy/kubernetes/',
    ).toBe(envoyYamlText);
    const configFile = flag(envoy.args, '-c')!;
    expect(configFile).toBe(flag(compose.services['envoy']!.command, '-c'));
    expect(compose.services['envoy']!.volumes).toContain(`./envoy/envoy.yaml:${configFile}:ro`);
    const mounted = configMapFileAt(kubernetes, pod, envoy, configFile);
    expect(mounted?.text).toBe(envoyYamlText);
    expect(mounted?.mount.readOnly).toBe(true);
  });

  it('runs the Envoy image at envoy/VERSION, as compose does', () => {
    expect(envoy.image).toBe(`envoyproxy/envoy:v${envoyVersion}`);
    expect(compose.services['envoy']!.image).toBe(envoy.image);
  });

  it("exposes Envoy's listener port, the port compose publishes, through the Service", () => {
    const http = envoy.ports?.find((port) => port.name === 'http');
    expect(http?.containerPort).toBe(ENVOY.listenerPort);
    expect(compose.services['authz']!.ports).toContain(`${ENVOY.listenerPort}:${ENVOY.listenerPort}`);
    const service = one(kubernetes, 'Service', 'bank');
    expect(at(service, 'spec', 'ports')).toEqual([
      expect.objectContaining({ port: ENVOY.listenerPort, targetPort: 'http' }),
    ]);
    expect(at(service, 'spec', 'selector')).toEqual(at(pod, 'spec', 'template', 'metadata', 'labels'));
    // The admin API stays on loopback, out of the Service's and the kubelet's reach.
    expect(ENVOY.adminHost).toBe('127.0.0.1');
  });

  it("probes Envoy's readiness on the route that skips ext_authz, which the policy also makes public", () => {
    expect(at(envoy, 'readinessProbe', 'httpGet')).toEqual({ path: ENVOY.uncheckedPaths[0], port: 'http' });
    expect(ENVOY.uncheckedPaths).toEqual(['/healthz']);
    for (const probe of ['startupProbe', 'livenessProbe'])
      expect(at(envoy, probe, 'tcpSocket')).toEqual({ port: 'http' });
  });

  it("runs the sidecar image's CMD, listening on Envoy's authz port, and authz accepts the arguments", () => {
    expect(authz.image).toBe('envoy-authz-sidecar:latest');
    expect(authz.args!.slice(0, DOCKERFILE.cmd.length)).toEqual(DOCKERFILE.cmd);
    const config = serveConfig(authz.args!.slice(1), {});
    // The same port as Envoy's authz cluster, compose's --listen and the image's default; the host is the
    // Pod's every interface, because kubelet gRPC probes connect to the Pod IP.
    expect(config.listen).toMatchObject({ host: '0.0.0.0', port: portOf(ENVOY.authz) });
    expect(portOf(flag(compose.services['authz']!.command, '--listen')!)).toBe(portOf(ENVOY.authz));
    expect(portOf(SERVE_DEFAULTS.listen)).toBe(portOf(ENVOY.authz));
    expect(DOCKERFILE.expose.every((port) => Number(port.split('/')[0]) === portOf(ENVOY.authz))).toBe(true);
    expect(config.metricsListen?.port).toBe(
      authz.ports?.find((port) => port.name === 'metrics')?.containerPort,
    );
    expect(authzContainerProblems(authz)).toEqual([]);
  });

  it('mounts the policy ConfigMap as the folder of the file the image reads, without subPath', () => {
    const policyFile = flag(DOCKERFILE.cmd, '--policy')!;
    expect(flag(authz.args, '--policy')).toBe(policyFile);
    expect(flag(compose.services['authz']!.command, '--policy')).toBe(policyFile);
    const mounted = configMapFileAt(kubernetes, pod, authz, policyFile);
    expect(mounted?.mount).toEqual({
      name: 'policy',
      mountPath: path.posix.dirname(policyFile),
      readOnly: true,
    });
    expect(mounted?.text).toBe(readFileSync(path.join(deployDir, 'policy', 'policy.yaml'), 'utf8'));
    // Not hashed: the ConfigMap is edited in place and hot reloaded, not rolled out.
    expect(podVolumes.find((volume) => volume.name === 'policy')?.configMap?.name).toBe('authz-policy');
    const policy = compilePolicy(mounted!.text!, policyFile);
    const healthRoute = policy.serviceSelector
      .forHost(undefined)
      ?.routeTable.match('GET', ENVOY.uncheckedPaths[0]!);
    expect(healthRoute?.access.kind).toBe('public');
  });

  it("runs the bank on Envoy's bank address, as compose does", () => {
    expect(bank.image).toBe('envoy-authz-demo:latest');
    expect(bank.args?.[0]).toBe('bank');
    expect(bankConfig(bank.args!.slice(1), {}).listen.text).toBe(ENVOY.bank);
    expect(flag(compose.services['bank']!.command, '--listen')).toBe(ENVOY.bank);
  });

  it('lets in only named ports that exist in the Pod', () => {
    const policy = one(kubernetes, 'NetworkPolicy', 'bank');
    const named = containersOf(pod).flatMap((owner) => (owner.ports ?? []).map((port) => port.name));
    for (const port of at(policy, 'spec', 'ingress', 0, 'ports') as { port: string }[]) {
      expect(named).toContain(port.port);
    }
  });
});

/** The Secrets the authz Deployments expect (docs/deployment.md), each with its key. */
const NONCE_KEY_SECRET = { name: 'authz-dpop-nonce-key', key: 'nonce-key' };
const REDIS_URL_SECRET = { name: 'authz-redis', key: 'url' };

interface SecretVolume {
  name: string;
  secret?: { secretName?: string; optional?: boolean; items?: { key: string; path: string }[] };
}

/**
 * What is wrong with how an authz container reads `file` from a Secret; [] when a read-only mount of a
 * volume (no subPath) takes it from the Secret's key, named in items, not optional, so that a Pod without
 * the Secret does not start.
 */
function secretFileProblems(
  deployment: Json,
  owner: Container,
  file: string,
  expected: { readonly name: string; readonly key: string },
): string[] {
  const problems: string[] = [];
  const mount = (owner.volumeMounts ?? []).find(
    (candidate) => candidate.mountPath === path.posix.dirname(file),
  );
  if (mount === undefined) return [`no volume is mounted at ${path.posix.dirname(file)}`];
  if (mount.readOnly !== true) problems.push(`${mount.name} is mounted writable`);
  if (mount.subPath !== undefined) problems.push(`${mount.name} is mounted by subPath`);
  const volumes = at(deployment, 'spec', 'template', 'spec', 'volumes') as SecretVolume[];
  const secret = volumes.find((volume) => volume.name === mount.name)?.secret;
  if (secret?.secretName !== expected.name) problems.push(`${mount.name} is not the Secret ${expected.name}`);
  if (secret?.optional !== false) problems.push(`${mount.name} is not optional: false`);
  const item = secret?.items?.find((candidate) => candidate.path === path.posix.basename(file));
  if (item?.key !== expected.key)
    problems.push(`${file} is not the Secret's key ${expected.key}, named in items`);
  return problems;
}

/**
 * What is wrong with how an authz container gets the DPoP nonce key: `authz serve`, parsing the container's
 * arguments and variables with its own parser, must be given a file from the key `nonce-key` of the Secret
 * `authz-dpop-nonce-key` (secretFileProblems).
 */
function nonceKeyProblems(deployment: Json, owner: Container): string[] {
  const env = Object.fromEntries((owner.env ?? []).map((variable) => [variable.name, variable.value]));
  const file = serveConfig(owner.args!.slice(1), env).dpopNonceKeyFile;
  if (file === undefined) return ['authz serve is given no --dpop-nonce-key (nor AUTHZ_DPOP_NONCE_KEY_FILE)'];
  return secretFileProblems(deployment, owner, file, NONCE_KEY_SECRET);
}

/**
 * What is wrong with how the policy an authz container mounts reaches its Redis: the policy, compiled by
 * authz, must keep DPoP proofs in Redis with its URL in a file, taken from the key `url` of the Secret
 * `authz-redis` (secretFileProblems).
 */
function redisUrlProblems(objects: readonly Json[], deployment: Json, owner: Container): string[] {
  const file = flag(owner.args, '--policy')!;
  const store = compilePolicy(configMapFileAt(objects, deployment, owner, file)!.text!, file).dpopReplayStore;
  if (store.type !== 'redis') return [`the mounted policy keeps DPoP proofs in ${store.type}, not redis`];
  if (!('file' in store.url)) return ['the mounted policy gives the Redis URL in the file, not in url_file'];
  return secretFileProblems(deployment, owner, store.url.file, REDIS_URL_SECRET);
}

describe('deploy/kubernetes: the DPoP nonce key comes from a Secret the Pod cannot start without', () => {
  it('authz serve is given the mounted key of authz-dpop-nonce-key with a flag its parser takes', () => {
    expect(flag(authz.args, '--dpop-nonce-key')).toBe('/etc/authz-dpop/nonce-key');
    expect(nonceKeyProblems(pod, authz)).toEqual([]);
    // One file for every worker: --workers runs the same command line in each process.
    expect(serveConfig(authz.args!.slice(1), {}).workers).toBeGreaterThanOrEqual(1);
  });

  /** The containers of the Pod that mount the volume of the Secret `secretName`. */
  const mountersOf = (secretName: string): string[] => {
    const volume = podVolumes.find(
      (candidate) => (candidate as SecretVolume).secret?.secretName === secretName,
    )!;
    return containersOf(pod)
      .filter((owner) => (owner.volumeMounts ?? []).some((mount) => mount.name === volume.name))
      .map((owner) => owner.name);
  };

  it('only the authz container mounts it', () => {
    expect(mountersOf(NONCE_KEY_SECRET.name)).toEqual(['authz']);
  });

  it("the mounted policy's Redis URL is the mounted key of authz-redis", () => {
    expect(redisUrlProblems(kubernetes, pod, authz)).toEqual([]);
  });

  it('only the authz container mounts the Redis URL', () => {
    expect(mountersOf(REDIS_URL_SECRET.name)).toEqual(['authz']);
  });

  it('a Redis URL mounted from another Secret, or optional, is caught', () => {
    const loose = structuredClone(pod);
    const volume = (at(loose, 'spec', 'template', 'spec', 'volumes') as SecretVolume[]).find(
      (candidate) => candidate.secret?.secretName === REDIS_URL_SECRET.name,
    )!;
    volume.secret!.secretName = 'redis';
    volume.secret!.optional = true;
    expect(redisUrlProblems(kubernetes, loose, authz)).toEqual([
      `${volume.name} is not the Secret ${REDIS_URL_SECRET.name}`,
      `${volume.name} is not optional: false`,
    ]);
  });

  it('the manifests create no such Secret: the operator does', () => {
    expect(kubernetes.filter((object) => object['kind'] === 'Secret')).toEqual([]);
  });

  it('a key not given, given through an optional Secret, or mounted from another key is caught', () => {
    const withoutFlag = structuredClone(authz);
    withoutFlag.args = withoutFlag.args!.filter(
      (arg, index, args) => arg !== '--dpop-nonce-key' && args[index - 1] !== '--dpop-nonce-key',
    );
    expect(nonceKeyProblems(pod, withoutFlag)).toEqual([
      'authz serve is given no --dpop-nonce-key (nor AUTHZ_DPOP_NONCE_KEY_FILE)',
    ]);
    // The variable the CLI reads instead of the flag is as good.
    withoutFlag.env = [{ name: 'AUTHZ_DPOP_NONCE_KEY_FILE', value: '/etc/authz-dpop/nonce-key' }];
    expect(nonceKeyProblems(pod, withoutFlag)).toEqual([]);

    const loose = structuredClone(pod);
    const volume = (at(loose, 'spec', 'template', 'spec', 'volumes') as SecretVolume[]).find(
      (candidate) => candidate.secret?.secretName === NONCE_KEY_SECRET.name,
    )!;
    volume.secret!.optional = true;
    volume.secret!.items = [{ key: 'key', path: 'nonce-key' }];
    expect(nonceKeyProblems(loose, authz)).toEqual([
      `${volume.name} is not optional: false`,
      `/etc/authz-dpop/nonce-key is not the Secret's key ${NONCE_KEY_SECRET.key}, named in items`,
    ]);
  });
});

describe('an authz container whose probes disagree with its listen port is caught', () => {
  it('a readiness probe on the wrong port, and a liveness probe on the wrong service', () => {
    const wrong = structuredClone(authz);
    (wrong.readinessProbe!['grpc'] as Json)['port'] = 9002;
    (wrong.livenessProbe!['grpc'] as Json)['service'] = 'envoy.service.auth.v2.Authorization';
    expect(authzContainerProblems(wrong)).toEqual([
      'readinessProbe gRPC port 9002 is not the listen port',
      'livenessProbe asks for service "envoy.service.auth.v2.Authorization", not ""',
    ]);
  });
});

const istio = render('istio');
const gateway = render('envoy-gateway');
const meshConfig = parse(readFileSync(path.join(deployDir, 'istio', 'mesh-config.yaml'), 'utf8')) as Json;

/** The Deployment behind a Service, and the container port its target port names. */
function backendOf(objects: readonly Json[], serviceName: string, servicePort: number) {
  const service = one(objects, 'Service', serviceName);
  const port = (at(service, 'spec', 'ports') as { port: number; targetPort: string }[]).find(
    (p) => p.port === servicePort,
  );
  expect(port, `Service ${serviceName} has port ${servicePort}`).toBeDefined();
  const deployment = objects.find(
    (object) =>
      object['kind'] === 'Deployment' &&
      Object.entries(at(service, 'spec', 'selector') as Json).every(
        ([key, value]) => at(object, 'spec', 'template', 'metadata', 'labels', key) === value,
      ),
  )!;
  const owner = containersOf(deployment).find((candidate) =>
    (candidate.ports ?? []).some((p) => p.name === port!.targetPort),
  )!;
  return {
    service,
    deployment,
    owner,
    containerPort: owner.ports!.find((p) => p.name === port!.targetPort)!.containerPort,
  };
}

describe('deploy/istio: the extension provider, the AuthorizationPolicy and the authz Service agree', () => {
  const provider = (at(meshConfig, 'spec', 'meshConfig', 'extensionProviders') as Json[])[0]!;
  const grpc = provider['envoyExtAuthzGrpc'] as Json;
  const namespace = at(one(istio, 'Namespace', 'bank'), 'metadata', 'name') as string;

  it('the AuthorizationPolicy names the provider, and selects the bank but not authz', () => {
    const policy = one(istio, 'AuthorizationPolicy', 'bank-ext-authz');
    expect(at(policy, 'spec', 'action')).toBe('CUSTOM');
    expect(at(policy, 'spec', 'provider', 'name')).toBe(provider['name']);
    const selector = at(policy, 'spec', 'selector', 'matchLabels') as Json;
    const selects = (name: string) =>
      Object.entries(selector).every(
        ([key, value]) =>
          at(one(istio, 'Deployment', name), 'spec', 'template', 'metadata', 'labels', key) === value,
      );
    expect(selects('bank')).toBe(true);
    expect(selects('authz')).toBe(false);
    expect(at(one(istio, 'Namespace', 'bank'), 'metadata', 'labels', 'istio-injection')).toBe('enabled');
  });

  it("the provider's service and port are the authz Service, whose Pods listen there", () => {
    expect(grpc['service']).toBe(`authz.${namespace}.svc.cluster.local`);
    const { service, owner, containerPort } = backendOf(istio, 'authz', grpc['port'] as number);
    expect(at(service, 'metadata', 'namespace')).toBe(namespace);
    expect(at(service, 'spec', 'ports', 0, 'appProtocol')).toBe('grpc');
    expect(portOf(flag(owner.args, '--listen')!)).toBe(containerPort);
    expect(authzContainerProblems(owner)).toEqual([]);
  });

  it('is for sidecar mode, and says so: injection on, a workload selector, ambient not shown', () => {
    // In ambient mode a policy that selects workloads is enforced by ztunnel, which makes no ext_authz call;
    // CUSTOM needs a waypoint, attached by targetRefs (istio.io/latest/docs/ambient/usage/l4-policy/).
    const labels = at(one(istio, 'Namespace', 'bank'), 'metadata', 'labels') as Json;
    expect(labels['istio-injection']).toBe('enabled');
    expect(labels['istio.io/dataplane-mode']).toBeUndefined();
    const policy = one(istio, 'AuthorizationPolicy', 'bank-ext-authz');
    expect(at(policy, 'spec', 'selector')).toBeDefined();
    expect(at(policy, 'spec', 'targetRefs')).toBeUndefined();
    const readme = readFileSync(path.join(deployDir, 'istio', 'README.md'), 'utf8');
    expect(readme).toMatch(/^## Sidecar mode only$/m);
    expect(readme).toMatch(/^## Ambient mode: not shown here$/m);
  });

  it('fails closed, with the timeout and status of envoy/envoy.yaml', () => {
    expect(grpc['failOpen']).toBe(false);
    expect(ENVOY.failureModeAllow).toBe(false);
    expect(grpc['timeout']).toBe(ENVOY.timeout);
    expect(Number(grpc['statusOnError'])).toBe(STATUS_CODES[ENVOY.statusOnError]);
  });
});

/** The objects of a YAML file under deploy/ that no kustomization renders (an example), as written. */
const exampleObjects = (file: string) =>
  parseAllDocuments(readFileSync(path.join(deployDir, file), 'utf8')).map(
    (document) => document.toJS() as Json,
  );

/** The policy a rendering's authz Pods mount, compiled. */
function mountedPolicy(objects: readonly Json[]) {
  const deployment = one(objects, 'Deployment', 'authz');
  const owner = container(deployment, 'authz');
  const file = flag(owner.args, '--policy')!;
  return compilePolicy(configMapFileAt(objects, deployment, owner, file)!.text!, file);
}

describe('deploy/envoy-gateway: the SecurityPolicy, the route and the Services agree', () => {
  const policy = one(gateway, 'SecurityPolicy', 'bank-ext-authz');
  const route = one(gateway, 'HTTPRoute', 'bank');
  const gatewayObject = one(gateway, 'Gateway', 'bank');
  /** A route with its own SecurityPolicy, not applied by the kustomization. */
  const override = exampleObjects('envoy-gateway/examples/statements-route.yaml');
  const routes = [...gateway, ...override].filter((object) => object['kind'] === 'HTTPRoute');
  const extAuthOf = (object: Json) => at(object, 'spec', 'extAuth') as Json;

  it('the SecurityPolicy targets the Gateway, so every route attached to it is checked', () => {
    expect(at(policy, 'spec', 'targetRefs')).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: at(gatewayObject, 'metadata', 'name') },
    ]);
    const listeners = (at(gatewayObject, 'spec', 'listeners') as Json[]).map((listener) => listener['name']);
    expect(routes.length).toBeGreaterThan(1);
    for (const each of routes) {
      for (const parent of at(each, 'spec', 'parentRefs') as Json[]) {
        expect(parent['name']).toBe(at(gatewayObject, 'metadata', 'name'));
        expect(listeners).toContain(parent['sectionName']);
      }
    }
  });

  it("names the mounted policy's service in context_extensions, under the key authz reads", () => {
    const extensions = extAuthOf(policy)['contextExtensions'] as Json[];
    expect(extensions).toEqual([{ name: SERVICE_EXTENSION, type: 'Value', value: expect.any(String) }]);
    const named = extensions[0]!['value'] as string;
    expect(mountedPolicy(gateway).serviceSelector.byName(named)?.name).toBe(named);
  });

  it("ext auth's backend is the authz Service, whose Pods listen there", () => {
    const backend = at(policy, 'spec', 'extAuth', 'grpc', 'backendRefs', 0) as { name: string; port: number };
    const { owner, containerPort } = backendOf(gateway, backend.name, backend.port);
    expect(portOf(flag(owner.args, '--listen')!)).toBe(containerPort);
    expect(authzContainerProblems(owner)).toEqual([]);
  });

  it("the route's backend is the bank Service, whose Pods listen there", () => {
    const backend = at(route, 'spec', 'rules', 0, 'backendRefs', 0) as { name: string; port: number };
    const { owner, containerPort } = backendOf(gateway, backend.name, backend.port);
    expect(bankConfig(owner.args!.slice(1), {}).listen).toMatchObject({
      host: '0.0.0.0',
      port: containerPort,
    });
    expect(at(owner, 'readinessProbe', 'httpGet', 'path')).toBe(ENVOY.uncheckedPaths[0]);
  });

  it('fails closed, with the timeout and status of envoy/envoy.yaml', () => {
    const extAuth = extAuthOf(policy);
    expect(extAuth['failOpen']).toBe(false);
    expect(extAuth['timeout']).toBe(ENVOY.timeout);
    expect(extAuth['statusOnError']).toBe(STATUS_CODES[ENVOY.statusOnError]);
  });

  it('every rule of every route removes the headers envoy/envoy.yaml keeps from the upstream: token and proof', () => {
    expect(ENVOY.removedUpstream).toEqual(expect.arrayContaining(['authorization', 'dpop']));
    for (const each of routes) {
      (at(each, 'spec', 'rules') as Json[]).forEach((rule, index) => {
        const removed = ((rule['filters'] as Json[] | undefined) ?? [])
          .filter((filter) => filter['type'] === 'RequestHeaderModifier')
          .flatMap((filter) => (at(filter, 'requestHeaderModifier', 'remove') as string[] | undefined) ?? [])
          .map((name) => name.toLowerCase());
        expect(removed.sort(), `HTTPRoute ${at(each, 'metadata', 'name')} rule ${index}`).toEqual(
          [...ENVOY.removedUpstream].sort(),
        );
      });
    }
  });

  it("a route-level SecurityPolicy repeats every setting of the Gateway's, naming another service", () => {
    // It replaces the Gateway's policy for its route (no mergeType): whatever it left out would be gone.
    const routePolicies = override.filter((object) => object['kind'] === 'SecurityPolicy');
    expect(routePolicies).toHaveLength(1);
    const { contextExtensions: gatewayNames, ...gatewaySettings } = extAuthOf(policy);
    for (const each of routePolicies) {
      const targets = at(each, 'spec', 'targetRefs') as Json[];
      expect(targets).toHaveLength(1);
      expect(targets[0]).toMatchObject({ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' });
      expect(routes.map((candidate) => at(candidate, 'metadata', 'name'))).toContain(targets[0]!['name']);
      expect(at(each, 'spec', 'mergeType')).toBeUndefined();
      const { contextExtensions: names, ...settings } = extAuthOf(each);
      expect(settings).toEqual(gatewaySettings);
      expect(names).not.toEqual(gatewayNames);
      // The service it names is one of the gateway demo's policy (docs/deployment.md, "Gateway").
      const named = at(names, 0, 'value') as string;
      expect(names).toEqual([{ name: SERVICE_EXTENSION, type: 'Value', value: named }]);
      const gatewayPolicy = path.join(repoRoot, 'policy.gateway.yaml');
      const compiled = compilePolicy(readFileSync(gatewayPolicy, 'utf8'), gatewayPolicy);
      expect(compiled.serviceSelector.byName(named)?.name).toBe(named);
    }
  });
});

/** A NetworkPolicy peer: who may connect. */
type Peer = Json;

/** Prometheus, by the label every namespace carries with its name (kubernetes.io/metadata.name). */
const MONITORING: Peer[] = [
  { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
];

/**
 * The labels Envoy Gateway gives the Pods of a Gateway's proxy (EnvoyAppLabel plus the owning Gateway;
 * github.com/envoyproxy/gateway internal/infrastructure/kubernetes/proxy/resource.go,
 * internal/gatewayapi/translator.go), in envoy-gateway-system, where they run by default.
 */
function envoyGatewayProxiesOf(gatewayObject: Json): Peer[] {
  return [
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } },
      podSelector: {
        matchLabels: {
          'app.kubernetes.io/name': 'envoy',
          'app.kubernetes.io/component': 'proxy',
          'app.kubernetes.io/managed-by': 'envoy-gateway',
          'gateway.envoyproxy.io/owning-gateway-name': at(gatewayObject, 'metadata', 'name'),
          'gateway.envoyproxy.io/owning-gateway-namespace': at(gatewayObject, 'metadata', 'namespace'),
        },
      },
    },
  ];
}

/**
 * What is wrong with the NetworkPolicies that select a rendering's authz Pods; [] when, together, they let in
 * exactly the gRPC port from `callers` (none: the port stays closed) and the metrics port from the
 * monitoring namespace, by the names of the authz container's ports, which agree with the Service and with
 * the addresses authz listens on.
 */
function authzIngressProblems(objects: readonly Json[], callers: readonly Peer[] | undefined): string[] {
  const problems: string[] = [];
  const deployment = one(objects, 'Deployment', 'authz');
  const podLabels = at(deployment, 'spec', 'template', 'metadata', 'labels') as Json;
  const owner = container(deployment, 'authz');
  const portNumber = (name: string) => owner.ports?.find((port) => port.name === name)?.containerPort;
  const service = one(objects, 'Service', 'authz');
  const servicePorts = at(service, 'spec', 'ports') as { port: number; targetPort: string }[];
  if (servicePorts.length !== 1 || servicePorts[0]!.targetPort !== 'grpc')
    problems.push(`Service authz does not target the port grpc alone`);
  if (portNumber('grpc') !== portOf(flag(owner.args, '--listen') ?? ''))
    problems.push(`port grpc ${portNumber('grpc')} is not the --listen port`);
  if (portNumber('metrics') !== portOf(flag(owner.args, '--metrics-listen') ?? ''))
    problems.push(`port metrics ${portNumber('metrics')} is not the --metrics-listen port`);

  const expected = new Map<string, readonly Peer[]>([['metrics', MONITORING]]);
  if (callers !== undefined) expected.set('grpc', callers);
  const policies = objects.filter(
    (object) =>
      object['kind'] === 'NetworkPolicy' &&
      at(object, 'spec', 'podSelector', 'matchExpressions') === undefined &&
      Object.entries((at(object, 'spec', 'podSelector', 'matchLabels') as Json | undefined) ?? {}).every(
        ([key, value]) => podLabels[key] === value,
      ),
  );
  if (policies.length === 0) problems.push('no NetworkPolicy selects the authz Pods');
  const opened = new Set<string>();
  for (const policy of policies) {
    const name = at(policy, 'metadata', 'name') as string;
    if (!((at(policy, 'spec', 'policyTypes') as string[] | undefined) ?? []).includes('Ingress'))
      problems.push(`${name}: policyTypes lacks Ingress`);
    ((at(policy, 'spec', 'ingress') as Json[] | undefined) ?? []).forEach((rule, index) => {
      const from = (rule['from'] as Peer[] | undefined) ?? [];
      const ports = (rule['ports'] as { port?: string | number; protocol?: string }[] | undefined) ?? [];
      if (from.length === 0) problems.push(`${name}: rule ${index} lets in every source`);
      if (ports.length === 0) problems.push(`${name}: rule ${index} lets in every port`);
      for (const { port, protocol } of ports) {
        const portName =
          typeof port === 'number' ? owner.ports?.find((each) => each.containerPort === port)?.name : port;
        const peers = portName === undefined ? undefined : expected.get(portName);
        if (peers === undefined || protocol !== 'TCP') {
          problems.push(`${name}: rule ${index} opens ${protocol ?? 'TCP'} ${port ?? 'every port'}`);
          continue;
        }
        opened.add(portName!);
        if (from.length > 0 && !isDeepStrictEqual(from, peers))
          problems.push(`${name}: ${portName} is open to ${JSON.stringify(from)}`);
      }
    });
  }
  for (const portName of expected.keys())
    if (!opened.has(portName)) problems.push(`${portName} is open to nobody`);
  return problems;
}

describe('deploy/authz-service (and the folders that include it): the DPoP nonce key and the Redis URL from their Secrets', () => {
  it.each([
    ['authz-service', () => render('authz-service')],
    ['istio', () => istio],
    ['envoy-gateway', () => gateway],
  ] as const)('deploy/%s', (_dir, objects) => {
    const deployment = one(objects(), 'Deployment', 'authz');
    expect(nonceKeyProblems(deployment, container(deployment, 'authz'))).toEqual([]);
    expect(redisUrlProblems(objects(), deployment, container(deployment, 'authz'))).toEqual([]);
    expect(objects().filter((object) => object['kind'] === 'Secret')).toEqual([]);
  });
});

describe('deploy/authz-service: the authz Pods let in their proxies on gRPC, and Prometheus on metrics', () => {
  it('the base alone: metrics from the monitoring namespace, gRPC from nobody until a folder opens it', () => {
    expect(authzIngressProblems(render('authz-service'), undefined)).toEqual([]);
  });

  it("deploy/istio: gRPC from the bank's Pods, whose sidecars the AuthorizationPolicy has call authz", () => {
    const selector = at(one(istio, 'AuthorizationPolicy', 'bank-ext-authz'), 'spec', 'selector') as Json;
    expect(authzIngressProblems(istio, [{ podSelector: selector }])).toEqual([]);
  });

  it("deploy/envoy-gateway: gRPC from the proxies of the Gateway the SecurityPolicy targets, and no one else's", () => {
    const target = at(one(gateway, 'SecurityPolicy', 'bank-ext-authz'), 'spec', 'targetRefs', 0) as Json;
    const gatewayObject = one(gateway, target['kind'] as string, target['name'] as string);
    expect(at(gatewayObject, 'metadata', 'namespace')).toBe('bank');
    expect(authzIngressProblems(gateway, envoyGatewayProxiesOf(gatewayObject))).toEqual([]);
  });

  it('a rule open to every source, another port, or a gRPC port nobody opens is caught', () => {
    const objects = structuredClone(gateway);
    const grpcPolicy = objects.find(
      (object) =>
        object['kind'] === 'NetworkPolicy' &&
        (at(object, 'spec', 'ingress', 0, 'ports', 0, 'port') as string | undefined) === 'grpc',
    )!;
    const name = at(grpcPolicy, 'metadata', 'name') as string;
    const rule = at(grpcPolicy, 'spec', 'ingress', 0) as Json;
    delete rule['from'];
    rule['ports'] = [
      { port: 9464, protocol: 'TCP' },
      { port: 'http', protocol: 'TCP' },
    ];
    expect(authzIngressProblems(objects, envoyGatewayProxiesOf(one(gateway, 'Gateway', 'bank')))).toEqual([
      `${name}: rule 0 lets in every source`,
      `${name}: rule 0 opens TCP http`,
      'grpc is open to nobody',
    ]);
  });
});

const versioned = render('kubernetes-versioned-policy');

describe('deploy/kubernetes-versioned-policy: the policy in a ConfigMap named by its content', () => {
  const versionedPod = one(versioned, 'Deployment', 'bank');
  const versionedAuthz = container(versionedPod, 'authz');
  const policyFile = flag(DOCKERFILE.cmd, '--policy')!;
  const policyVolume = (deployment: Json) =>
    (
      at(deployment, 'spec', 'template', 'spec', 'volumes') as {
        name: string;
        configMap?: { name: string };
      }[]
    ).find((volume) => volume.name === 'policy');

  it('holds a copy of deploy/policy/policy.yaml, byte for byte', () => {
    expect(
      readFileSync(path.join(deployDir, 'kubernetes-versioned-policy', 'policy.yaml'), 'utf8'),
      'cp deploy/policy/policy.yaml deploy/kubernetes-versioned-policy/',
    ).toBe(readFileSync(path.join(deployDir, 'policy', 'policy.yaml'), 'utf8'));
  });

  it("mounts a ConfigMap whose name carries kustomize's content hash, immutable, in place of the live one", () => {
    const configMaps = versioned.filter((object) => object['kind'] === 'ConfigMap');
    const names = configMaps.map((object) => at(object, 'metadata', 'name') as string);
    expect(names).not.toContain('authz-policy');
    const mounted = policyVolume(versionedPod)?.configMap?.name;
    // kustomize's suffix: a dash and ten characters of its hash alphabet.
    expect(mounted).toMatch(/^authz-policy-versioned-[a-z0-9]{10}$/);
    const configMap = one(versioned, 'ConfigMap', mounted!);
    expect(configMap['immutable']).toBe(true);
    const file = configMapFileAt(versioned, versionedPod, versionedAuthz, policyFile);
    expect(file?.mount).toEqual({
      name: 'policy',
      mountPath: path.posix.dirname(policyFile),
      readOnly: true,
    });
    expect(file?.text).toBe(readFileSync(path.join(deployDir, 'policy', 'policy.yaml'), 'utf8'));
    expect(() => compilePolicy(file!.text!, policyFile)).not.toThrow();
  });

  it('changes nothing else of deploy/kubernetes: the Pod, its nonce key and the other objects are the same', () => {
    /** The objects without the policy ConfigMap and the ConfigMap name the Pod mounts it from, in order. */
    const withoutPolicy = (objects: readonly Json[]) =>
      objects
        .filter(
          (object) =>
            !(
              object['kind'] === 'ConfigMap' &&
              (at(object, 'metadata', 'name') as string).startsWith('authz-policy')
            ),
        )
        .map((object) => {
          if (object['kind'] !== 'Deployment') return object;
          const copy = structuredClone(object);
          delete policyVolume(copy)!.configMap;
          return copy;
        })
        .sort((a, b) =>
          `${a['kind']}/${at(a, 'metadata', 'name')}`.localeCompare(
            `${b['kind']}/${at(b, 'metadata', 'name')}`,
          ),
        );
    expect(withoutPolicy(versioned)).toEqual(withoutPolicy(kubernetes));
    expect(nonceKeyProblems(versionedPod, versionedAuthz)).toEqual([]);
    expect(authzContainerProblems(versionedAuthz)).toEqual([]);
  });
});

// --- The teams overlay: a policy directory of one ConfigMap per owner ----------------------------------------

const teams = render('kubernetes-teams');
const teamsExample = render('kubernetes-teams-add-team-example');
const gatewayDir = path.join(repoRoot, 'policy.gateway.d');
const gatewayYamlText = readFileSync(path.join(repoRoot, 'envoy', 'gateway.yaml'), 'utf8');
/** The root file of a policy directory (docs/policy.md, "A policy directory: one file per team"). */
const ROOT_FILE = '_gateway.yaml';

interface ProjectedVolume {
  name: string;
  projected?: { sources: { configMap?: { name: string; items?: unknown[] } }[] };
  configMap?: unknown;
}

/**
 * The policy directory an authz container serves: the folder `--policy` names, the volume mounted there
 * (projected, of ConfigMaps), and the files that folder holds, by name, from those ConfigMaps' data.
 */
function policyDirectoryOf(objects: readonly Json[], deployment: Json, owner: Container) {
  const dir = flag(owner.args, '--policy')!;
  const mount = (owner.volumeMounts ?? []).find((candidate) => candidate.mountPath === dir);
  const volumes = at(deployment, 'spec', 'template', 'spec', 'volumes') as ProjectedVolume[];
  const volume = volumes.find((candidate) => candidate.name === mount?.name);
  const configMaps = (volume?.projected?.sources ?? []).map((source) => source.configMap?.name);
  const files = new Map<string, string>();
  for (const name of configMaps) {
    const data = at(one(objects, 'ConfigMap', name!), 'data') as Record<string, string>;
    for (const [file, text] of Object.entries(data)) {
      expect(files.has(file), `${file} in two ConfigMaps`).toBe(false);
      files.set(file, text);
    }
  }
  return { dir, mount, volume, configMaps, files };
}

type PolicyFile = Json & { services?: Json[] };
const parsePolicy = (text: string) => parse(text) as PolicyFile;

/** Whether a service file name is admitted by one entry of `service_files` (a name, or a pattern with `*`). */
function admits(entries: readonly string[], file: string): boolean {
  return entries.some((entry) =>
    new RegExp(
      `^${entry
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*')}$`,
    ).test(file),
  );
}

/**
 * The directory as one single-file policy: the root's keys less those only a root has, and every service
 * file's services in file-name order. What the single-file compiler can check of a directory (issuers a
 * service names, scopes, claim headers, hosts claimed twice) until the directory loader is there to test.
 */
function asOneFile(files: ReadonlyMap<string, string>): PolicyFile {
  const root = { ...parsePolicy(files.get(ROOT_FILE)!) };
  for (const key of ['owner', 'service_files', 'overlapping_wildcards', 'service_rules']) delete root[key];
  const services = [...files.keys()]
    .filter((file) => file !== ROOT_FILE)
    .sort()
    .flatMap((file) => parsePolicy(files.get(file)!).services ?? []);
  return { ...root, services };
}

/** The services of a policy with the issuer `iss` taken out of each service's list. */
const withoutIssuer = (policy: PolicyFile, iss: string): PolicyFile => ({
  ...policy,
  services: (policy.services ?? []).map((service) => ({
    ...service,
    issuers: (service['issuers'] as { issuer: string }[]).filter((entry) => entry.issuer !== iss),
  })),
});

/** The hosts the services claim that no virtual host of an Envoy config routes, and claim headers it leaves. */
function envoyGaps(envoyText: string, services: readonly Json[]) {
  const config = parse(envoyText) as Json;
  const manager = at(
    config,
    'static_resources',
    'listeners',
    0,
    'filter_chains',
    0,
    'filters',
    0,
    'typed_config',
  );
  const virtualHosts = at(manager, 'route_config', 'virtual_hosts') as {
    domains: string[];
    routes: Json[];
  }[];
  const clusters = new Set(
    (at(config, 'static_resources', 'clusters') as { name: string }[]).map((cluster) => cluster.name),
  );
  const removedFirst = (
    at((at(manager, 'http_filters') as Json[])[0], 'typed_config', 'mutations', 'request_mutations') as {
      remove: string;
    }[]
  ).map((mutation) => mutation.remove);
  const unrouted: string[] = [];
  for (const host of services.flatMap((service) => (service['hosts'] as string[] | undefined) ?? [])) {
    const virtualHost = virtualHosts.find((candidate) => candidate.domains.includes(host));
    const upstreams = (virtualHost?.routes ?? []).map((route) => at(route, 'route', 'cluster') as string);
    if (virtualHost === undefined || upstreams.length === 0 || !upstreams.every((name) => clusters.has(name)))
      unrouted.push(host);
  }
  const claimHeaders = services.flatMap((service) =>
    Object.values((service['claim_headers'] as Record<string, string> | undefined) ?? {}),
  );
  return { unrouted, unremoved: claimHeaders.filter((header) => !removedFirst.includes(header)) };
}

describe('policy.gateway.d/: policy.gateway.yaml split by owner', () => {
  const files = new Map(
    readdirSync(gatewayDir)
      .filter((file) => file.endsWith('.yaml'))
      .map((file) => [file, readFileSync(path.join(gatewayDir, file), 'utf8')]),
  );

  it('the root admits every service file, each names its owner, and the platform owns the root', () => {
    const root = parsePolicy(files.get(ROOT_FILE)!);
    expect(root['owner']).toBe('platform');
    expect(root['service_files']).toEqual(['bank.yaml', 'statements.yaml']);
    const serviceFiles = [...files.keys()].filter(
      (file) => file !== ROOT_FILE && !file.endsWith('.test.yaml'),
    );
    expect(serviceFiles.filter((file) => !admits(root['service_files'] as string[], file))).toEqual([]);
    expect(
      Object.fromEntries(serviceFiles.map((file) => [file, parsePolicy(files.get(file)!)['owner']])),
    ).toEqual({
      'bank.yaml': 'team-bank',
      'statements.yaml': 'team-statements',
    });
    for (const file of serviceFiles)
      expect(Object.keys(parsePolicy(files.get(file)!)).sort(), file).toEqual(['owner', 'services']);
  });

  it('holds the same policy as policy.gateway.yaml, the key file named from its own folder', () => {
    const merged = asOneFile(files);
    const single = parsePolicy(readFileSync(path.join(repoRoot, 'policy.gateway.yaml'), 'utf8'));
    const jwksFile = (policy: PolicyFile, base: string) =>
      (policy['issuers'] as { jwks_file?: string }[])
        .filter((issuer) => issuer.jwks_file !== undefined)
        .map((issuer) => path.resolve(base, issuer.jwks_file!));
    expect(jwksFile(merged, gatewayDir)).toEqual(jwksFile(single, repoRoot));
    const withoutKeyFiles = (policy: PolicyFile) => ({
      ...policy,
      issuers: (policy['issuers'] as Json[]).map(({ jwks_file: _ignored, ...issuer }) => issuer),
    });
    expect(withoutKeyFiles(merged)).toEqual(withoutKeyFiles(single));
  });

  it("bank.test.yaml, the bank's policy tests, pass against the same policy in one file", async () => {
    // Its `policy: .` is the directory: the root and every service file, merged; and the same cases pass
    // against policy.gateway.yaml, the same policy in one file.
    const testFile = path.join(gatewayDir, 'bank.test.yaml');
    const parsed = parsePolicyTestFile(readFileSync(testFile, 'utf8'), testFile);
    expect(parsed.policyFile).toBe(gatewayDir);
    const single = path.join(repoRoot, 'policy.gateway.yaml');
    for (const policy of [
      await loadPolicy(gatewayDir, { requireKeyFiles: false }),
      compilePolicy(readFileSync(single, 'utf8'), single),
    ]) {
      const results = await runPolicyTests(policy, parsed.cases, parsed.nowMs!);
      expect(results.filter((result) => !result.passed).map((result) => result.testCase.name)).toEqual([]);
      expect(results.flatMap((result) => result.warnings)).toEqual([]);
    }
  });

  it('the directory, loaded, decides as policy.gateway.yaml: no route, service, issuer or setting differs', async () => {
    const single = path.join(repoRoot, 'policy.gateway.yaml');
    const change = policyChange(
      compilePolicy(readFileSync(single, 'utf8'), single),
      await loadPolicy(gatewayDir, { requireKeyFiles: false }),
    );
    expect(Object.values(change).flat()).toEqual([]);
  });
});

describe('deploy/kubernetes-teams: the gateway, its policy a directory of one ConfigMap per owner', () => {
  const teamsPod = one(teams, 'Deployment', 'bank');
  const teamsAuthz = container(teamsPod, 'authz');
  const teamsEnvoy = container(teamsPod, 'envoy');
  const directory = policyDirectoryOf(teams, teamsPod, teamsAuthz);
  const overlayFile = (file: string) => readFileSync(path.join(deployDir, 'kubernetes-teams', file), 'utf8');

  it("mounts Envoy's config, byte for byte envoy/gateway.yaml, where Envoy's args read it", () => {
    expect(overlayFile('gateway.yaml'), 'cp envoy/gateway.yaml deploy/kubernetes-teams/').toBe(
      gatewayYamlText,
    );
    const mounted = configMapFileAt(teams, teamsPod, teamsEnvoy, flag(teamsEnvoy.args, '-c')!);
    expect(mounted?.text).toBe(gatewayYamlText);
    expect(flag(teamsEnvoy.args, '-c')).toBe(flag(envoy.args, '-c'));
  });

  it('authz serve --policy names the folder of the projected volume; every other argument is the base', () => {
    expect(directory.dir).toBe('/etc/authz/policy.d');
    expect(directory.mount).toEqual({ name: 'policy', mountPath: directory.dir, readOnly: true });
    expect(teamsAuthz.args).toEqual(
      authz.args!.map((arg) => (arg === flag(authz.args, '--policy') ? directory.dir : arg)),
    );
    expect(serveConfig(teamsAuthz.args!.slice(1), {}).policyFile).toBe(directory.dir);
    expect(authzContainerProblems(teamsAuthz)).toEqual([]);
    expect(nonceKeyProblems(teamsPod, teamsAuthz)).toEqual([]);
  });

  it("the projected volume holds the root's ConfigMap and each team's, none hashed, one file each", () => {
    expect(directory.volume?.configMap).toBeUndefined();
    expect(directory.configMaps).toEqual([
      'authz-policy-gateway',
      'authz-policy-bank',
      'authz-policy-statements',
    ]);
    for (const name of directory.configMaps)
      expect(Object.keys(at(one(teams, 'ConfigMap', name!), 'data') as Json)).toHaveLength(1);
    expect([...directory.files.keys()].sort()).toEqual([ROOT_FILE, 'bank.yaml', 'statements.yaml']);
    for (const [file, text] of directory.files) expect(text, file).toBe(overlayFile(file));
    // The base's single-file ConfigMap is gone, and nothing else mounts the policy.
    expect(teams.filter((object) => at(object, 'metadata', 'name') === 'authz-policy')).toEqual([]);
  });

  it('the root admits exactly the service files mounted beside it, by name, and each names its owner', () => {
    const root = parsePolicy(directory.files.get(ROOT_FILE)!);
    const serviceFiles = [...directory.files.keys()].filter((file) => file !== ROOT_FILE);
    expect([...(root['service_files'] as string[])].sort()).toEqual(serviceFiles.sort());
    expect((root['service_files'] as string[]).some((entry) => entry.includes('*'))).toBe(false);
    expect(root['owner']).toBe('platform');
    for (const file of serviceFiles)
      expect(parsePolicy(directory.files.get(file)!)['owner']).toBe(`team-${path.basename(file, '.yaml')}`);
  });

  it("the files are policy.gateway.d's, but for the cluster's issuer and Redis in the root", () => {
    const repoFile = (file: string) => parsePolicy(readFileSync(path.join(gatewayDir, file), 'utf8'));
    for (const file of ['bank.yaml', 'statements.yaml'])
      expect(parsePolicy(directory.files.get(file)!), file).toEqual(
        withoutIssuer(repoFile(file), 'http://127.0.0.1:9000'),
      );
    const root = parsePolicy(directory.files.get(ROOT_FILE)!);
    const repoRoot_ = repoFile(ROOT_FILE);
    for (const key of ['version', 'owner', 'service_files', 'known_scopes'])
      expect(root[key], key).toEqual(repoRoot_[key]);
    // The cluster's issuer is deploy/policy's placeholder, with the same identifier as the demo's dev tokens.
    const clusterPolicy = parsePolicy(readFileSync(path.join(deployDir, 'policy', 'policy.yaml'), 'utf8'));
    expect(root['issuers']).toEqual(clusterPolicy['issuers']);
    expect(root['dpop']).toEqual(clusterPolicy['dpop']);
  });

  it('every mounted file is in force when the directory is judged, as `authz serve` judges it', () => {
    const { inForce, verdicts } = judgePolicyDirectory(
      {
        folder: directory.dir,
        files: [...directory.files].map(([name, text]) => ({ name, read: { text } })),
      },
      undefined,
    );
    expect(verdicts.map((verdict) => [verdict.name, verdict.outcome, verdict.owner])).toEqual([
      [ROOT_FILE, 'accepted', 'platform'],
      ['bank.yaml', 'accepted', 'team-bank'],
      ['statements.yaml', 'accepted', 'team-statements'],
    ]);
    const compiled = inForce.policy;
    expect(compiled.serviceSelector.forHost('bank.example')?.name).toBe('bank');
    expect(compiled.serviceSelector.forHost('statements.example')?.name).toBe('statements');
    // The root's Redis URL is the mounted key of the Secret authz-redis.
    const store = compiled.dpopReplayStore;
    expect(store.type === 'redis' && 'file' in store.url ? store.url.file : undefined).toBe(
      '/etc/authz-redis/url',
    );
    expect(secretFileProblems(teamsPod, teamsAuthz, '/etc/authz-redis/url', REDIS_URL_SECRET)).toEqual([]);
  });

  it('Envoy routes every host the mounted services claim, and its first filter removes their claim headers', () => {
    const services = [...directory.files.keys()]
      .filter((file) => file !== ROOT_FILE)
      .flatMap((file) => parsePolicy(directory.files.get(file)!).services!);
    const mounted = configMapFileAt(teams, teamsPod, teamsEnvoy, flag(teamsEnvoy.args, '-c')!)!.text!;
    expect(envoyGaps(mounted, services)).toEqual({ unrouted: [], unremoved: [] });
  });

  it("runs the statements stub on the address of Envoy's statements cluster, and probes Envoy by a host it routes", () => {
    const statements = container(teamsPod, 'statements');
    const config = parse(gatewayYamlText) as Json;
    const cluster = (at(config, 'static_resources', 'clusters') as Json[]).find(
      (c) => c['name'] === 'statements',
    )!;
    const socket = at(cluster, ...FIRST_ENDPOINT_SOCKET);
    expect(statements.args).toEqual([
      'statements',
      '--listen',
      `${at(socket, 'address')}:${at(socket, 'port_value')}`,
    ]);
    expect(statements.image).toBe(bank.image);
    expect(at(teamsEnvoy, 'readinessProbe', 'httpGet')).toEqual({
      path: '/healthz',
      port: 'http',
      httpHeaders: [{ name: 'Host', value: 'bank.example' }],
    });
  });
});

describe('deploy/kubernetes-teams-add-team-example: a third team, its own ConfigMap, a root that admits it', () => {
  const examplePod = one(teamsExample, 'Deployment', 'bank');
  const exampleAuthz = container(examplePod, 'authz');
  const directory = policyDirectoryOf(teamsExample, examplePod, exampleAuthz);
  const exampleFile = (file: string) =>
    readFileSync(path.join(deployDir, 'kubernetes-teams-add-team-example', file), 'utf8');

  it("adds the cards team's ConfigMap, not hashed, to the teams overlay's projected volume", () => {
    expect(directory.dir).toBe('/etc/authz/policy.d');
    expect(directory.configMaps).toEqual([
      'authz-policy-gateway',
      'authz-policy-bank',
      'authz-policy-statements',
      'authz-policy-cards',
    ]);
    expect(directory.files.get('cards.yaml')).toBe(exampleFile('cards.yaml'));
    expect(directory.files.get(ROOT_FILE)).toBe(exampleFile(ROOT_FILE));
    expect(parsePolicy(exampleFile('cards.yaml'))['owner']).toBe('team-cards');
  });

  it('its root is the teams root with cards.yaml admitted and view:cards known, nothing else', () => {
    const root = parsePolicy(directory.files.get(ROOT_FILE)!);
    const teamsRoot = parsePolicy(readFileSync(path.join(deployDir, 'kubernetes-teams', ROOT_FILE), 'utf8'));
    expect(root).toEqual({
      ...teamsRoot,
      service_files: [...(teamsRoot['service_files'] as string[]), 'cards.yaml'],
      known_scopes: [...(teamsRoot['known_scopes'] as string[]), 'view:cards'],
    });
    const serviceFiles = [...directory.files.keys()].filter((file) => file !== ROOT_FILE);
    expect(serviceFiles.filter((file) => !admits(root['service_files'] as string[], file))).toEqual([]);
    const compiled = compilePolicy(
      stringify(asOneFile(directory.files)),
      path.posix.join(directory.dir, ROOT_FILE),
    );
    expect(compiled.serviceSelector.forHost('cards.example')?.name).toBe('cards');
  });

  it("leaves Envoy's config as the teams overlay's: cards.example has no virtual host yet, as its comments say", () => {
    const envoyConfig = (objects: readonly Json[]) => {
      const deployment = one(objects, 'Deployment', 'bank');
      const owner = container(deployment, 'envoy');
      return configMapFileAt(objects, deployment, owner, flag(owner.args, '-c')!)?.text;
    };
    expect(envoyConfig(teamsExample)).toBe(envoyConfig(teams));
    const cards = parsePolicy(exampleFile('cards.yaml')).services!;
    expect(envoyGaps(envoyConfig(teamsExample)!, cards)).toEqual({
      unrouted: ['cards.example'],
      unremoved: [],
    });
  });
});

describe('every container in every rendering is locked down and sized', () => {
  const renderings = {
    kubernetes,
    'kubernetes-versioned-policy': versioned,
    'kubernetes-teams': teams,
    'kubernetes-teams-add-team-example': teamsExample,
    istio,
    'envoy-gateway': gateway,
    'authz-service': render('authz-service'),
  };
  const cases = Object.entries(renderings).flatMap(([dir, objects]) =>
    objects
      .filter((object) => object['kind'] === 'Deployment')
      .flatMap((deployment) =>
        containersOf(deployment).map(
          (owner) =>
            [`${dir}: ${at(deployment, 'metadata', 'name')}/${owner.name}`, deployment, owner] as const,
        ),
      ),
  );

  it.each(cases)('%s', (_label, deployment, owner) => {
    // The restricted Pod Security Standard, said by the container itself.
    expect(owner.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(at(owner, 'securityContext', 'capabilities', 'add')).toBeUndefined();
    expect(at(owner, 'securityContext', 'privileged')).toBeUndefined();
    // A numeric non-root user: the `node` user (1000) of the images built from our Dockerfile.
    const uid = at(owner, 'securityContext', 'runAsUser') as number;
    expect(uid).toBeGreaterThan(0);
    if (!owner.image.startsWith('envoyproxy/')) {
      expect(DOCKERFILE.user).toBe('node');
      expect(uid).toBe(1000);
    }
    const podSpec = at(deployment, 'spec', 'template', 'spec') as Json;
    expect(podSpec['hostNetwork']).toBeUndefined();
    expect(podSpec['automountServiceAccountToken']).toBe(false);
    // Nothing writable: no container writes, so no emptyDir; every mount read-only, none by subPath.
    for (const volume of (podSpec['volumes'] as Json[] | undefined) ?? [])
      expect(volume['emptyDir']).toBeUndefined();
    for (const mount of owner.volumeMounts ?? []) {
      expect(mount.readOnly).toBe(true);
      expect(mount.subPath).toBeUndefined();
    }
    for (const kind of ['requests', 'limits'] as const) {
      expect(Object.keys(owner.resources?.[kind] ?? {}).sort()).toEqual(['cpu', 'memory']);
    }
  });

  it('with a PodDisruptionBudget for each Deployment that authz or Envoy serves in', () => {
    for (const [objects, name] of [
      [kubernetes, 'bank'],
      [versioned, 'bank'],
      [teams, 'bank'],
      [teamsExample, 'bank'],
      [istio, 'authz'],
      [gateway, 'authz'],
    ] as const) {
      const budget = one(objects, 'PodDisruptionBudget', name);
      expect(at(budget, 'spec', 'selector', 'matchLabels')).toEqual(
        at(one(objects, 'Deployment', name), 'spec', 'selector', 'matchLabels'),
      );
      expect(at(one(objects, 'Deployment', name), 'spec', 'replicas')).toBeGreaterThan(
        at(budget, 'spec', 'minAvailable') as number,
      );
    }
  });
});
