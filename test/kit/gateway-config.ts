import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { startEnvoy, type StartedEnvoy } from './envoy.js';
import { freePorts } from './free-port.js';
import { repoRoot, startCliAndWait, type KitProcess } from './process.js';

/** envoy/gateway.yaml for the tests that run it through real Envoy: its ports, and virtual hosts of theirs. */

export type YamlMap = Record<string, unknown>;

const CLUSTERS = ['authz', 'bank', 'statements', 'otel_collector'] as const;
export type ClusterName = (typeof CLUSTERS)[number];

/**
 * envoy/gateway.yaml with the ports changed (the listener on 127.0.0.1) and the virtual hosts `extra`
 * returns put before the catch-all. Each virtual host adds its name (`x-e2e-virtual-host`) and the
 * request's host (`x-e2e-host`) to the answers upstreams send (not to the sidecar's denials).
 */
export async function gatewayConfigFor(
  ports: Readonly<Record<'listen' | 'admin' | ClusterName, number>>,
  extra: (virtualHosts: readonly YamlMap[]) => YamlMap[] = () => [],
): Promise<string> {
  const config = parse(await readFile(path.join(repoRoot, 'envoy', 'gateway.yaml'), 'utf8')) as YamlMap;
  const socket = (holder: unknown) =>
    ((holder as YamlMap)['address'] as YamlMap)['socket_address'] as YamlMap;
  socket(config['admin']).port_value = ports.admin;
  const resources = config['static_resources'] as YamlMap;
  const [listener, ...others] = resources['listeners'] as YamlMap[];
  if (listener === undefined || others.length > 0) throw new Error('gateway.yaml: expected one listener');
  Object.assign(socket(listener), { address: '127.0.0.1', port_value: ports.listen });
  for (const cluster of resources['clusters'] as YamlMap[]) {
    const name = cluster['name'] as ClusterName;
    if (!CLUSTERS.includes(name)) throw new Error(`gateway.yaml: unexpected cluster ${name}`);
    const assignment = cluster['load_assignment'] as { endpoints: Array<{ lb_endpoints: YamlMap[] }> };
    for (const endpoint of assignment.endpoints.flatMap((locality) => locality.lb_endpoints)) {
      socket(endpoint['endpoint']).port_value = ports[name];
    }
  }

  const chain = (listener['filter_chains'] as YamlMap[])[0]!;
  const hcm = (chain['filters'] as YamlMap[])[0]!['typed_config'] as YamlMap;
  const virtualHosts = (hcm['route_config'] as YamlMap)['virtual_hosts'] as YamlMap[];
  virtualHosts.splice(virtualHosts.length - 1, 0, ...extra(virtualHosts));
  for (const virtualHost of virtualHosts) {
    virtualHost['response_headers_to_add'] = [
      { header: { key: 'x-e2e-virtual-host', value: String(virtualHost['name']) } },
      { header: { key: 'x-e2e-host', value: '%REQ(:AUTHORITY)%' } },
    ];
  }
  return stringify(config, { lineWidth: 0 });
}

/** The first listener's connection manager and the clusters of an Envoy configuration in envoy/. */
export async function shippedConfig(file: string): Promise<{ hcm: YamlMap; clusters: YamlMap[] }> {
  const config = parse(await readFile(path.join(repoRoot, 'envoy', file), 'utf8')) as YamlMap;
  const resources = config['static_resources'] as YamlMap;
  const listener = (resources['listeners'] as YamlMap[])[0]!;
  const hcm = ((listener['filter_chains'] as YamlMap[])[0]!['filters'] as YamlMap[])[0]![
    'typed_config'
  ] as YamlMap;
  return { hcm, clusters: resources['clusters'] as YamlMap[] };
}

/** The gateway running: real Envoy on envoy/gateway.yaml, `authz serve`, `authz bank`, `authz statements`. */
export interface StartedGateway {
  readonly envoy: StartedEnvoy;
  /** Envoy's listener, `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  readonly authz: KitProcess;
  readonly bank: KitProcess;
  readonly statements: KitProcess;
  /** Stops Envoy, then the three processes. */
  stop(): Promise<void>;
}

/**
 * Starts the gateway with `policy` (a file or a policy directory) served by the built CLI, and Envoy on
 * gatewayConfigFor's config with `extra` virtual hosts. No collector listens at the tracing port: no request
 * of these tests arrives with a sampled traceparent, so nothing is exported.
 */
export async function startGateway(
  policy: string,
  name: string,
  extra?: (virtualHosts: readonly YamlMap[]) => YamlMap[],
): Promise<StartedGateway> {
  const [listen, admin, authzPort, bankPort, statementsPort, collectorPort] = (await freePorts(6)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [authz, bank, statements] = (
    await Promise.all([
      startCliAndWait(['serve', '--policy', policy, '--listen', `127.0.0.1:${authzPort}`]),
      startCliAndWait(['bank', '--listen', `127.0.0.1:${bankPort}`]),
      startCliAndWait(['statements', '--listen', `127.0.0.1:${statementsPort}`]),
    ])
  ).map((started) => started.process) as [KitProcess, KitProcess, KitProcess];
  const stopProcesses = () => Promise.all([authz.stop(), bank.stop(), statements.stop()]);
  let envoy: StartedEnvoy;
  try {
    const ports = {
      listen,
      admin,
      authz: authzPort,
      bank: bankPort,
      statements: statementsPort,
      otel_collector: collectorPort,
    };
    envoy = await startEnvoy({ config: { text: await gatewayConfigFor(ports, extra) }, admin, name });
  } catch (error) {
    await stopProcesses();
    throw error;
  }
  return {
    envoy,
    baseUrl: `http://127.0.0.1:${listen}`,
    authz,
    bank,
    statements,
    stop: async () => {
      await envoy.stop();
      await stopProcesses();
    },
  };
}
