import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { IDENTITY_HEADERS } from '../../src/contract/identity-headers.js';
import { ensureDevCertificates } from '../../src/demo/dev-tls/dev-certificates.js';
import type { DevTlsFiles } from '../../src/demo/dev-tls/dev-certificates.js';
import { argsOf, copiesOf, readDockerfile, stageNamed } from '../kit/dockerfile.js';
import { rawRequest } from '../kit/raw-http.js';
import {
  envoyBinary,
  envoyConfigFor,
  envoyConfigPath,
  startDeployedEnvoy,
  type RunningEnvoy,
} from '../kit/envoy.js';
import { freePorts } from '../kit/free-port.js';
import { repoRoot } from '../kit/process.js';
import { tlsRequest } from '../kit/tls-request.js';
import { at, FIRST_ENDPOINT_SOCKET } from '../kit/parsed-tree.js';

const execFileAsync = promisify(execFile);

const EXT_AUTHZ = 'envoy.filters.http.ext_authz';
const HEADER_MUTATION = 'envoy.filters.http.header_mutation';
const ROUTER = 'envoy.filters.http.router';
const HCM = 'envoy.filters.network.http_connection_manager';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function items(value: unknown): unknown[] {
  expect(Array.isArray(value), `expected a list, got ${JSON.stringify(value)}`).toBe(true);
  return value as unknown[];
}

function named(list: unknown, name: string): unknown {
  const matches = items(list).filter((item) => at(item, 'name') === name);
  expect(matches, `exactly one element named ${name}`).toHaveLength(1);
  return matches[0];
}

function loadYaml(file: string): unknown {
  return parse(readFileSync(file, 'utf8'));
}

/**
 * Runs `envoy --mode validate` in `cwd` (where envoy.yaml's relative .authz-dev/tls/ files are looked up) and
 * returns its output; rejects (with Envoy's output) on a non-zero exit.
 */
async function validate(file: string, cwd: string): Promise<string> {
  const { stdout, stderr } = await execFileAsync(
    envoyBinary(),
    ['--mode', 'validate', '-c', file, '--log-level', 'warn'],
    { timeout: 20_000, cwd },
  );
  return stdout + stderr;
}

function expectCleanValidation(output: string, file: string): void {
  expect(output).toContain(`configuration '${file}' OK`);
  // Deprecated fields only log a warning: fail on it so an Envoy upgrade cannot hide a config that will break.
  expect(output).not.toMatch(/\]\[(warning|error|critical)\]/);
}

const config = loadYaml(envoyConfigPath);
const resources = at(config, 'static_resources');
const ingressFilters = at(named(at(resources, 'listeners'), 'ingress'), 'filter_chains', 0, 'filters');
const hcm = at(named(ingressFilters, HCM), 'typed_config');
const tlsListener = named(at(resources, 'listeners'), 'ingress_tls');
const tlsContext = at(tlsListener, 'filter_chains', 0, 'transport_socket', 'typed_config');
const httpFilters = items(at(hcm, 'http_filters'));
const extAuthz = at(named(httpFilters, EXT_AUTHZ), 'typed_config');
const clusters = at(resources, 'clusters');

/** The single socket address of a static cluster. */
function clusterAddress(name: string): { address: unknown; port: unknown } {
  const endpoints = items(at(named(clusters, name), 'load_assignment', 'endpoints')).flatMap((locality) =>
    items(at(locality, 'lb_endpoints')),
  );
  expect(endpoints, `cluster ${name} endpoints`).toHaveLength(1);
  const socket = at(endpoints[0], 'endpoint', 'address', 'socket_address');
  return { address: at(socket, 'address'), port: at(socket, 'port_value') };
}

/** Every value of `key` anywhere under `node`, with where it is. */
function everywhere(node: unknown, key: string, where: string): Array<{ where: string; value: unknown }> {
  if (node === null || typeof node !== 'object') return [];
  const found: Array<{ where: string; value: unknown }> = [];
  const value = at(node, key);
  if (value !== undefined) found.push({ where, value });
  for (const [name, child] of Object.entries(node)) found.push(...everywhere(child, key, `${where}.${name}`));
  return found;
}

/** Every `typed_per_filter_config` entry for `filter` in the route configuration, with where it is. */
function filterOverrides(
  node: unknown,
  filter: string,
  where: string,
): Array<{ where: string; value: unknown }> {
  return everywhere(node, 'typed_per_filter_config', where).flatMap((found) => {
    const override = at(found.value, filter);
    return override === undefined ? [] : [{ where: found.where, value: override }];
  });
}

describe('envoy/envoy.yaml', () => {
  // A development certificate set where envoy.yaml looks for it (.authz-dev/tls/, relative to the working
  // directory), as `npm run demo` makes one; and the same set for the derived test configurations.
  let workDir: string;
  let tls: DevTlsFiles;
  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'envoy-validate-'));
    tls = await ensureDevCertificates(path.join(workDir, '.authz-dev'));
  });
  afterAll(async () => {
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('passes `envoy --mode validate` with the pinned Envoy', async () => {
    expectCleanValidation(await validate(envoyConfigPath, workDir), envoyConfigPath);
  });

  it('still validates with the test ports and certificate files substituted, and without the TLS listener', async () => {
    const ports = { listen: 18000, admin: 19901, authz: 19001, bank: 18080 };
    const withTls = path.join(workDir, 'with-tls.yaml');
    await writeFile(withTls, envoyConfigFor({ ...ports, tls: 18443 }, tls));
    const plain = path.join(workDir, 'plain.yaml');
    await writeFile(plain, envoyConfigFor(ports));
    // From another folder: the derived configuration names the certificate files by absolute path.
    expectCleanValidation(await validate(withTls, tmpdir()), withTls);
    expectCleanValidation(await validate(plain, tmpdir()), plain);
    expect(() => envoyConfigFor({ ...ports, tls: 18443 })).toThrow(
      /both the TLS port and the certificate set/,
    );
  });

  it('changes only ports, the listener addresses to loopback and the certificate files, for tests', () => {
    const ports = {
      listen: 18000,
      admin: 19901,
      authz: 19001,
      bank: 18080,
      tls: 18443,
      otelCollector: 14317,
    };
    const derived = parse(envoyConfigFor(ports, tls)) as unknown;
    const expected = structuredClone(config);
    const set = (socket: unknown, port: number): void => {
      (socket as Record<string, unknown>).port_value = port;
    };
    set(at(expected, 'admin', 'address', 'socket_address'), ports.admin);
    const listener = at(
      named(at(expected, 'static_resources', 'listeners'), 'ingress'),
      'address',
      'socket_address',
    );
    set(listener, ports.listen);
    (listener as Record<string, unknown>).address = '127.0.0.1';
    const expectedTls = named(at(expected, 'static_resources', 'listeners'), 'ingress_tls');
    const tlsSocket = at(expectedTls, 'address', 'socket_address');
    set(tlsSocket, ports.tls);
    (tlsSocket as Record<string, unknown>).address = '127.0.0.1';
    const common = at(
      expectedTls,
      'filter_chains',
      0,
      'transport_socket',
      'typed_config',
      'common_tls_context',
    );
    (at(common, 'tls_certificates', 0, 'certificate_chain') as Record<string, unknown>).filename =
      tls.server.cert;
    (at(common, 'tls_certificates', 0, 'private_key') as Record<string, unknown>).filename = tls.server.key;
    (at(common, 'validation_context', 'trusted_ca') as Record<string, unknown>).filename = tls.ca.cert;
    for (const [name, port] of [
      ['authz', ports.authz],
      ['bank', ports.bank],
      ['otel_collector', ports.otelCollector],
    ] as const) {
      const cluster = named(at(expected, 'static_resources', 'clusters'), name);
      set(at(cluster, ...FIRST_ENDPOINT_SOCKET), port);
    }
    expect(derived).toEqual(expected);
    // Without a collector port, the otel_collector cluster keeps envoy.yaml's.
    const plain = parse(envoyConfigFor({ ...ports, otelCollector: undefined }, tls)) as unknown;
    expect(
      at(named(at(plain, 'static_resources', 'clusters'), 'otel_collector'), ...FIRST_ENDPOINT_SOCKET),
    ).toEqual({ address: '127.0.0.1', port_value: 4317 });
  });

  it('has the plain listener and the TLS listener, and they run the very same HTTP stack', () => {
    expect(items(at(resources, 'listeners')).map((listener) => at(listener, 'name'))).toEqual([
      'ingress',
      'ingress_tls',
    ]);
    expect(at(tlsListener, 'address', 'socket_address', 'port_value')).toBe(8443);
    expect(items(at(tlsListener, 'filter_chains'))).toHaveLength(1);
    expect(at(tlsListener, 'filter_chains', 0, 'filters')).toEqual(ingressFilters);
    expect(at(tlsListener, 'per_connection_buffer_limit_bytes')).toBe(
      at(named(at(resources, 'listeners'), 'ingress'), 'per_connection_buffer_limit_bytes'),
    );
  });

  it('asks TLS clients for a certificate without requiring one, and checks it against the development CA', () => {
    expect(at(tlsListener, 'filter_chains', 0, 'transport_socket', 'name')).toBe(
      'envoy.transport_sockets.tls',
    );
    expect(at(tlsContext, '@type')).toBe(
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
    );
    // Not required: a certificate-bound token sent without its certificate must reach authz for its 401.
    expect(at(tlsContext, 'require_client_certificate')).toBe(false);
    const common = at(tlsContext, 'common_tls_context');
    expect(at(common, 'validation_context')).toEqual({ trusted_ca: { filename: '.authz-dev/tls/ca.crt' } });
    expect(at(common, 'tls_certificates')).toEqual([
      {
        certificate_chain: { filename: '.authz-dev/tls/server.crt' },
        private_key: { filename: '.authz-dev/tls/server.key' },
      },
    ]);
    expect(at(common, 'tls_params', 'tls_minimum_protocol_version')).toBe('TLSv1_2');
  });

  it("sends the connection's client certificate to authz, and never a client's X-Forwarded-Client-Cert", () => {
    expect(at(extAuthz, 'include_peer_certificate')).toBe(true);
    expect(at(hcm, 'forward_client_cert_details')).toBe('SANITIZE');
    expect(at(hcm, 'set_current_client_cert_details')).toBeUndefined();
    expect(everywhere(config, 'request_headers_to_add', 'config')).toEqual([]);
  });

  it('keeps the admin API on loopback', () => {
    expect(at(config, 'admin', 'address', 'socket_address', 'address')).toBe('127.0.0.1');
  });

  it('normalises paths and rejects ambiguous ones before routing and authorisation', () => {
    expect(at(hcm, 'normalize_path')).toBe(true);
    expect(at(hcm, 'merge_slashes')).toBe(true);
    expect(at(hcm, 'path_with_escaped_slashes_action')).toBe('REJECT_REQUEST');
    expect(at(hcm, 'common_http_protocol_options', 'headers_with_underscores_action')).toBe('REJECT_REQUEST');
    expect(at(hcm, 'use_remote_address')).toBe(true);
  });

  it('removes client copies of the identity headers first, then runs ext_authz, then routes', () => {
    expect(httpFilters.map((filter) => at(filter, 'name'))).toEqual([HEADER_MUTATION, EXT_AUTHZ, ROUTER]);
  });

  it('removes every identity header the sidecar sets from every request, and nothing else', () => {
    const mutation = at(named(httpFilters, HEADER_MUTATION), 'typed_config');
    expect(at(mutation, '@type')).toBe(
      'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation',
    );
    expect(at(mutation, 'mutations')).toEqual({
      request_mutations: Object.values(IDENTITY_HEADERS).map((name) => ({ remove: name })),
    });
    // A per-route override could add to the removals or switch the filter off on some route: there is none.
    expect(filterOverrides(at(hcm, 'route_config'), HEADER_MUTATION, 'route_config')).toEqual([]);
  });

  it('never removes identity headers in the route configuration, which the router applies after ext_authz', () => {
    const identity: string[] = Object.values(IDENTITY_HEADERS);
    const removals = everywhere(at(hcm, 'route_config'), 'request_headers_to_remove', 'route_config');
    for (const { where, value } of removals) {
      expect(
        items(value).filter((name) => identity.includes(String(name).toLowerCase())),
        where,
      ).toEqual([]);
    }
  });

  it('does not send the bearer token upstream, on any virtual host', () => {
    const virtualHosts = items(at(hcm, 'route_config', 'virtual_hosts'));
    expect(virtualHosts.length).toBeGreaterThan(0);
    for (const virtualHost of virtualHosts) {
      const removed = items(at(virtualHost, 'request_headers_to_remove') ?? []);
      expect(removed, String(at(virtualHost, 'name'))).toContain('authorization');
      // The DPoP proof is for the sidecar (RFC 9449): it goes with the token.
      expect(removed, String(at(virtualHost, 'name'))).toContain('dpop');
    }
  });

  it('fails closed with 503, and bounds the check with a timeout', () => {
    expect(at(extAuthz, 'transport_api_version')).toBe('V3');
    expect(at(extAuthz, 'failure_mode_allow')).toBe(false);
    expect(at(extAuthz, 'failure_mode_allow_header_add')).toBeUndefined();
    expect(at(extAuthz, 'status_on_error', 'code')).toBe('ServiceUnavailable');
    expect(at(extAuthz, 'grpc_service', 'envoy_grpc', 'cluster_name')).toBe('authz');
    const timeout = at(extAuthz, 'grpc_service', 'timeout');
    expect(timeout).toMatch(/^\d+(\.\d+)?s$/);
    expect(Number.parseFloat(String(timeout))).toBeGreaterThan(0);
    expect(Number.parseFloat(String(timeout))).toBeLessThanOrEqual(5);
  });

  it('disables ext_authz on the exact /healthz route and nowhere else', () => {
    const routeConfig = at(hcm, 'route_config');
    const overrides = filterOverrides(routeConfig, EXT_AUTHZ, 'route_config');
    expect(overrides.map((override) => override.where)).toEqual(['route_config.virtual_hosts.0.routes.0']);
    expect(at(overrides[0]!.value, 'disabled')).toBe(true);
    expect(at(routeConfig, 'virtual_hosts', 0, 'routes', 0, 'match')).toEqual({ path: '/healthz' });
    // Everything else falls through to the catch-all route, which has authorisation on.
    const routes = items(at(routeConfig, 'virtual_hosts', 0, 'routes'));
    expect(at(routes.at(-1), 'match')).toEqual({ prefix: '/' });
  });

  it('talks HTTP/2 (gRPC) to the authz cluster and HTTP/1.1 to the bank, both on loopback', () => {
    const authz = named(clusters, 'authz');
    expect(
      at(
        authz,
        'typed_extension_protocol_options',
        HTTP_PROTOCOL_OPTIONS,
        'explicit_http_config',
        'http2_protocol_options',
      ),
    ).toBeTypeOf('object');
    const bank = at(named(clusters, 'bank'), 'typed_extension_protocol_options', HTTP_PROTOCOL_OPTIONS);
    expect(at(bank, 'explicit_http_config')).toEqual({ http_protocol_options: {} });
    expect(clusterAddress('authz')).toEqual({ address: '127.0.0.1', port: 9001 });
    expect(clusterAddress('bank')).toEqual({ address: '127.0.0.1', port: 8080 });
  });

  it('traces with OpenTelemetry to the otel_collector cluster (OTLP/gRPC on loopback), parent-based', () => {
    const tracing = at(hcm, 'tracing');
    // Envoy's own sampling stays at its 100 % defaults, a ceiling in Envoy 1.40: the sampler decides.
    for (const field of ['random_sampling', 'client_sampling', 'overall_sampling']) {
      expect(at(tracing, field), field).toBeUndefined();
    }
    expect(at(tracing, 'provider', 'name')).toBe('envoy.tracers.opentelemetry');
    const otel = at(tracing, 'provider', 'typed_config');
    expect(at(otel, '@type')).toBe('type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig');
    expect(at(otel, 'grpc_service', 'envoy_grpc', 'cluster_name')).toBe('otel_collector');
    expect(at(otel, 'service_name')).toBe('envoy');
    // Sampled traceparent: traced; unsampled: not; none: the wrapped ratio sampler's 0 %, not traced.
    expect(at(otel, 'sampler', 'name')).toBe('envoy.tracers.opentelemetry.samplers.parent_based');
    const root = at(otel, 'sampler', 'typed_config', 'wrapped_sampler');
    expect(at(root, 'name')).toBe('envoy.tracers.opentelemetry.samplers.trace_id_ratio_based');
    expect(at(root, 'typed_config', 'sampling_percentage')).toEqual({ numerator: 0, denominator: 'HUNDRED' });
    const collector = named(clusters, 'otel_collector');
    expect(
      at(
        collector,
        'typed_extension_protocol_options',
        HTTP_PROTOCOL_OPTIONS,
        'explicit_http_config',
        'http2_protocol_options',
      ),
    ).toBeTypeOf('object');
    expect(clusterAddress('otel_collector')).toEqual({ address: '127.0.0.1', port: 4317 });
  });

  it("closes idle connections to the bank before the bank does (4 s, under Node's 5 s keep-alive)", () => {
    // A request sent on a connection the upstream is closing is reset: Envoy answers 503.
    const bank = at(named(clusters, 'bank'), 'typed_extension_protocol_options', HTTP_PROTOCOL_OPTIONS);
    expect(at(bank, 'common_http_protocol_options', 'idle_timeout')).toBe('4s');
    const source = readFileSync(path.join(repoRoot, 'src', 'demo', 'bank', 'bank-server.ts'), 'utf8');
    expect(source).toMatch(/server\.keepAliveTimeout = 5_000;/);
  });
});

/** The `--flag value` argument of a compose command (list or string form). */
function flag(command: unknown, name: string): string | undefined {
  const args = typeof command === 'string' ? command.split(/\s+/) : items(command).map(String);
  const index = args.indexOf(name);
  return index === -1 ? undefined : args[index + 1];
}

/** Host path and container path of each short-syntax volume of a compose service. */
function mounts(service: unknown): Array<{ host: string; container: string }> {
  return items(at(service, 'volumes') ?? []).map((volume) => {
    expect(volume, 'volumes use the short HOST:CONTAINER[:ro] syntax').toBeTypeOf('string');
    const [host, container] = String(volume).split(':');
    return { host: host!, container: container! };
  });
}

function portOf(hostPort: string | undefined): number {
  const port = Number(hostPort?.split(':').at(-1));
  expect(Number.isInteger(port), `a HOST:PORT, got ${hostPort}`).toBe(true);
  return port;
}

describe('docker-compose.yml', () => {
  const compose = loadYaml(path.join(repoRoot, 'docker-compose.yml'));
  const service = (name: string): unknown => {
    const found = at(compose, 'services', name);
    expect(found, `service ${name}`).toBeDefined();
    return found;
  };

  it("builds the Dockerfile's demo target (the sidecar target has no bank or dev IdP)", () => {
    for (const name of ['authz', 'bank', 'dev-idp']) {
      expect(at(service(name), 'build'), name).toEqual({ context: '.', target: 'demo' });
    }
  });

  it('runs the Envoy version the tests run', () => {
    const version = readFileSync(path.join(repoRoot, 'envoy', 'VERSION'), 'utf8').trim();
    expect(at(service('envoy'), 'image')).toBe(`envoyproxy/envoy:v${version}`);
  });

  it('feeds Envoy the tested envoy/envoy.yaml', () => {
    const envoy = service('envoy');
    const mount = mounts(envoy).find((m) => path.resolve(repoRoot, m.host) === envoyConfigPath);
    expect(mount, 'envoy mounts ./envoy/envoy.yaml').toBeDefined();
    expect(existsSync(envoyConfigPath)).toBe(true);
    expect(flag(at(envoy, 'command'), '-c')).toBe(mount!.container);
  });

  it('puts all services in one network namespace so the 127.0.0.1 addresses hold', () => {
    expect(at(service('authz'), 'network_mode')).toBeUndefined();
    expect(at(service('bank'), 'network_mode')).toBe('service:authz');
    expect(at(service('envoy'), 'network_mode')).toBe('service:authz');
  });

  it('uses the ports envoy.yaml uses', () => {
    const listenerPort = at(
      named(at(resources, 'listeners'), 'ingress'),
      'address',
      'socket_address',
      'port_value',
    );
    const tlsPort = at(
      named(at(resources, 'listeners'), 'ingress_tls'),
      'address',
      'socket_address',
      'port_value',
    );
    const published = items(at(service('authz'), 'ports')).map((p) => portOf(String(p)));
    // Envoy's two listeners, and the dev IdP's port for the browser's sign-in.
    expect(published).toEqual([
      listenerPort,
      tlsPort,
      portOf(flag(at(service('dev-idp'), 'command'), '--listen')),
    ]);
    const authzListen = flag(at(service('authz'), 'command'), '--listen');
    const bankListen = flag(at(service('bank'), 'command'), '--listen');
    expect(authzListen?.split(':')[0]).toBe('127.0.0.1');
    expect(bankListen?.split(':')[0]).toBe('127.0.0.1');
    expect(portOf(authzListen)).toBe(clusterAddress('authz').port);
    expect(portOf(bankListen)).toBe(clusterAddress('bank').port);
  });

  it('runs the dev IdP with the issuer policy.yaml trusts, and points the web app at it', () => {
    const policy = loadYaml(path.join(repoRoot, 'policy.yaml'));
    const issuers = items(at(policy, 'issuers')).map((issuer) => at(issuer, 'issuer'));
    const idp = at(service('dev-idp'), 'command');
    const issuer = flag(idp, '--issuer');
    expect(issuers).toContain(issuer);
    expect(portOf(flag(idp, '--listen'))).toBe(portOf(new URL(issuer!).host));
    expect(flag(at(service('bank'), 'command'), '--app-issuer')).toBe(issuer);
    expect(at(service('dev-idp'), 'network_mode')).toBe('service:authz');
  });

  it('mounts the policy with its dev keys beside it, and only paths that exist', () => {
    const authz = service('authz');
    const policy = flag(at(authz, 'command'), '--policy');
    const authzMounts = mounts(authz);
    expect(authzMounts).toContainEqual({ host: './policy.yaml', container: policy });
    // The demo policy reads .authz-dev/jwks.json relative to the policy file.
    expect(authzMounts).toContainEqual({
      host: './.authz-dev',
      container: path.posix.join(path.posix.dirname(policy!), '.authz-dev'),
    });
    for (const name of ['authz', 'bank', 'envoy']) {
      for (const { host } of mounts(service(name))) {
        // .authz-dev is generated (`authz dev-token`, `npm run demo`) and never committed.
        if (path.normalize(host).split(path.sep)[0] === '.authz-dev') continue;
        expect(existsSync(path.resolve(repoRoot, host)), `${name} mounts ${host}`).toBe(true);
      }
    }
  });
});

describe('Dockerfile', () => {
  const stages = readDockerfile(path.join(repoRoot, 'Dockerfile'));
  const stageNames = stages.map((stage) => stage.name);

  it('builds on a Node LTS image (even major version)', () => {
    // A stage built FROM an earlier stage inherits its base.
    const bases = stages.map((stage) => stage.base).filter((base) => !stageNames.includes(base));
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) {
      const major = Number(/^node:(\d+)(?:[.-]|$)/.exec(base)?.[1]);
      expect(major, `${base} is node:<major>`).toBeGreaterThanOrEqual(20);
      expect(major % 2, `${base} is an LTS line`).toBe(0);
    }
  });

  it('has two targets: demo, for docker-compose.yml, and sidecar, last so it is the default', () => {
    expect(stageNames).toContain('demo');
    expect(stageNames.at(-1)).toBe('sidecar');
  });

  it('builds the web app into the demo image (dist/web, which the bank serves)', () => {
    const webBuild = stages.filter(
      (stage) =>
        copiesOf(stage).some((copy) => copy.from === undefined && copy.sources.includes('web')) &&
        argsOf(stage, 'RUN').some((run) => /\bvite build\b/.test(run)),
    );
    expect(webBuild.map((stage) => stage.name)).toHaveLength(1);
    expect(copiesOf(stageNamed(stages, 'demo'))).toContainEqual({
      from: webBuild[0]!.name,
      sources: ['/app/dist'],
      destination: './dist',
    });
  });

  it.each(['demo', 'sidecar'])('runs the CLI as the non-root node user (%s target)', (target) => {
    const stage = stageNamed(stages, target);
    expect(argsOf(stage, 'ENTRYPOINT').map((e) => JSON.parse(e) as unknown)).toEqual([
      ['node', 'dist/cli/main.js'],
    ]);
    expect(argsOf(stage, 'USER').at(-1)).toBe('node');
  });
});

describe('envoy/envoy.yaml in the pinned Envoy, with the authz service down', () => {
  let envoy: RunningEnvoy;
  let second: RunningEnvoy;
  let bank: Server;
  const bankPaths: string[] = [];
  const bankHeaders: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    // Nothing listens on the authz port: every check fails, so only an authz-free route can reach the bank.
    const [bankPort, authzPort, ...others] = await freePorts(6);
    bank = createServer((req, res) => {
      bankPaths.push(req.url ?? '');
      bankHeaders.push(req.headers);
      res.end(`bank saw ${req.url}`);
    });
    await new Promise<void>((resolve) => bank.listen(bankPort, '127.0.0.1', resolve));
    const [listen1, admin1, listen2, admin2] = others as [number, number, number, number];
    // Two at once: the flags must let several test Envoys share a machine.
    [envoy, second] = await Promise.all([
      startDeployedEnvoy({ listen: listen1, admin: admin1, authz: authzPort!, bank: bankPort! }),
      startDeployedEnvoy({ listen: listen2, admin: admin2, authz: authzPort!, bank: bankPort! }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([envoy?.stop(), second?.stop()]);
    await new Promise<void>((resolve) => (bank ? bank.close(() => resolve()) : resolve()));
  });

  it('runs several Envoys side by side', async () => {
    for (const running of [envoy, second]) {
      const response = await fetch(`${running.adminUrl}/ready`);
      expect(await response.text(), running.output()).toBe('LIVE\n');
    }
  });

  it('serves /healthz without authorisation', async () => {
    expect(await rawRequest(envoy.baseUrl, '/healthz')).toMatchObject({
      status: 200,
      body: 'bank saw /healthz',
    });
  });

  it('fails closed with 503 everywhere else, without reaching the bank', async () => {
    const before = bankPaths.length;
    for (const rawPath of ['/accounts', '/', '/healthz/x', '/HEALTHZ', '/healthzz']) {
      expect((await rawRequest(envoy.baseUrl, rawPath)).status, rawPath).toBe(503);
    }
    expect(bankPaths.slice(before)).toEqual([]);
  });

  it('normalises dot segments and double slashes before choosing the route', async () => {
    const before = bankPaths.length;
    expect((await rawRequest(envoy.baseUrl, '/accounts/../healthz')).status).toBe(200);
    expect((await rawRequest(envoy.baseUrl, '//healthz')).status).toBe(200);
    expect((await rawRequest(envoy.baseUrl, '/healthz/../accounts')).status).toBe(503);
    expect(bankPaths.slice(before)).toEqual(['/healthz', '/healthz']);
  });

  it('rejects escaped slashes and header names with underscores with 400', async () => {
    expect((await rawRequest(envoy.baseUrl, '/healthz%2F..%2Faccounts')).status).toBe(400);
    expect((await rawRequest(envoy.baseUrl, '/a%5Cb')).status).toBe(400);
    expect((await rawRequest(envoy.baseUrl, '/healthz', { headers: { x_user: 'admin' } })).status).toBe(400);
  });

  it('serves the TLS listener too, with or without a client certificate, and fails closed there as well', async () => {
    const before = bankPaths.length;
    const ca = envoy.tls.ca.cert;
    expect(await tlsRequest(envoy.tlsUrl, '/healthz', { ca })).toMatchObject({ status: 200 });
    const alice = envoy.tls.clients.alice;
    expect(await tlsRequest(envoy.tlsUrl, '/healthz', { ca, client: alice })).toMatchObject({ status: 200 });
    expect((await tlsRequest(envoy.tlsUrl, '/balance', { ca, client: alice })).status).toBe(503);
    expect(bankPaths.slice(before)).toEqual(['/healthz', '/healthz']);
  });

  it('refuses the handshake for a client certificate that the development CA did not sign', async () => {
    // The second Envoy made a set of its own, with another CA.
    const stranger = second.tls.clients.alice;
    await expect(
      tlsRequest(envoy.tlsUrl, '/healthz', { ca: envoy.tls.ca.cert, client: stranger }),
    ).rejects.toThrow();
  });

  it('removes an X-Forwarded-Client-Cert header the client sent, on both listeners', async () => {
    const before = bankHeaders.length;
    const forged = { 'x-forwarded-client-cert': 'Hash=0000;Subject="CN=alice"' };
    await rawRequest(envoy.baseUrl, '/healthz', { headers: forged });
    const ca = envoy.tls.ca.cert;
    await tlsRequest(envoy.tlsUrl, '/healthz', { ca, client: envoy.tls.clients.alice, headers: forged });
    const seen = bankHeaders.slice(before);
    expect(seen).toHaveLength(2);
    for (const headers of seen) expect(headers['x-forwarded-client-cert']).toBeUndefined();
  });
});
