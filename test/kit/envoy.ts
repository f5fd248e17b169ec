import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { ensureDevCertificates } from '../../src/demo/dev-tls/dev-certificates.js';
import type { DevTlsFiles } from '../../src/demo/dev-tls/dev-certificates.js';
import { freePort } from './free-port.js';
import { installedBinary } from './installed-binary.js';
import { repoRoot, startProcess, waitUntilReady, type KitProcess } from './process.js';

/*
 * The one Envoy starter of the test kit: the e2e suites, the browser suite, the bench and the fault suite
 * start Envoy for any configuration through {@link startEnvoy}, and the deployed envoy/envoy.yaml with test
 * ports through {@link startDeployedEnvoy}.
 */

/**
 * Locates the Envoy binary: `$ENVOY_BIN` if set, else `.tools/bin/envoy` as installed by
 * `npm run envoy:install` (scripts/install-envoy.sh).
 *
 * Throws rather than returning something a test could skip on: a suite that silently skips when Envoy is
 * missing would report green while proving nothing about the proxy configuration.
 *
 * @returns the absolute path of an executable Envoy binary
 * @throws Error when the binary is missing or not executable, naming the command that installs it
 */
export function envoyBinary(): string {
  return installedBinary({
    name: 'Envoy',
    envVar: 'ENVOY_BIN',
    installedAt: '.tools/bin/envoy',
    npmScript: 'envoy:install',
    script: 'scripts/install-envoy.sh',
  });
}

// ---- Any configuration ------------------------------------------------------------------------------

/** How to start Envoy: {@link startEnvoy}. */
export interface EnvoyStartOptions {
  /** The configuration: YAML text (written to a temporary file) or the path of a file. */
  readonly config: { readonly text: string } | { readonly file: string };
  /** The admin port the configuration sets: readiness is asked there (`/ready`). */
  readonly admin: number;
  /** Name in error messages (default `envoy`). */
  readonly name?: string;
  /** The binary (default {@link envoyBinary}). */
  readonly binary?: string;
  /** `--base-id` (default: one unique to this process and call). */
  readonly baseId?: number;
  /** `--concurrency`, worker threads (default 1). */
  readonly concurrency?: number;
  /** `--log-level` (default `warn`). */
  readonly logLevel?: string;
  /** Pin to this core (see {@link startProcess}). */
  readonly cpu?: number;
  /** Output to this file instead of pipes (the bench: nothing is read while it measures). */
  readonly logFile?: string;
  /** More command-line arguments, after the ones above. */
  readonly extraArgs?: readonly string[];
  /** How long it may take to report LIVE (default 20 s). */
  readonly readyTimeoutMs?: number;
}

/** An Envoy that reported LIVE on /ready. */
export interface StartedEnvoy {
  readonly process: KitProcess;
  /** `http://127.0.0.1:<admin>`. */
  readonly adminUrl: string;
  /** What it printed, for failure messages (its newest 64 KiB). */
  output(): string;
  /** Stops it (SIGTERM, then SIGKILL after 3 s) and removes its temporary folder; safe to call twice. */
  stop(): Promise<void>;
}

const OUTPUT_TAIL = 64 * 1024; // 64 KiB
const KILL_AFTER_MS = 3_000;
let startCount = 0;

/**
 * Unique per process and call. Hot restart is disabled, so Envoy should not use the base id at all; a
 * distinct one anyway keeps parallel Envoys apart should that ever change (shared memory and the hot-restart
 * domain socket are named after it).
 */
function uniqueBaseId(): number {
  return (process.pid % 100_000) * 1_000 + (startCount++ % 1_000);
}

async function isLive(adminUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${adminUrl}/ready`, { signal: AbortSignal.timeout(1_000) });
    const body = await response.text();
    return response.status === 200 && body.trim() === 'LIVE';
  } catch {
    return false;
  }
}

/**
 * Starts Envoy on any configuration and waits until its admin API reports `LIVE` on /ready, i.e. the
 * listeners are bound and the static clusters are initialised.
 *
 * Always `--disable-hot-restart`, so no shared memory or domain socket is taken and several Envoys can run
 * at once; `--concurrency 1` unless asked otherwise, because tests and the measured path need one worker
 * thread, not one per core.
 *
 * @throws Error with the command and Envoy's output when it exits or is not ready in time (it is stopped)
 */
export async function startEnvoy(options: EnvoyStartOptions): Promise<StartedEnvoy> {
  const dir = await mkdtemp(path.join(tmpdir(), 'envoy-kit-'));
  let configFile: string;
  if ('file' in options.config) configFile = options.config.file;
  else {
    configFile = path.join(dir, 'envoy.yaml');
    await writeFile(configFile, options.config.text);
  }
  const binary = options.binary ?? envoyBinary();
  const args = [
    ...['-c', configFile, '--log-level', options.logLevel ?? 'warn'],
    ...['--base-id', String(options.baseId ?? uniqueBaseId()), '--disable-hot-restart'],
    ...['--concurrency', String(options.concurrency ?? 1)],
    ...(options.extraArgs ?? []),
  ];
  const envoy = startProcess({
    name: options.name ?? 'envoy',
    command: binary,
    args,
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
    ...(options.logFile === undefined ? {} : { logFile: options.logFile }),
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await envoy.stop(KILL_AFTER_MS);
      await rm(dir, { recursive: true, force: true });
    })());
  const adminUrl = `http://127.0.0.1:${options.admin}`;
  try {
    await waitUntilReady(envoy, 'LIVE on /ready', () => isLive(adminUrl), options.readyTimeoutMs);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\nCommand: ${binary} ${args.join(' ')}`);
  }
  return { process: envoy, adminUrl, output: () => envoy.outputTail(OUTPUT_TAIL), stop };
}

// ---- The deployed configuration ---------------------------------------------------------------------

/** The deployed Envoy configuration; tests derive theirs from it so the two cannot drift apart. */
export const envoyConfigPath: string = path.join(repoRoot, 'envoy', 'envoy.yaml');

/** The ports a test Envoy uses; everything else comes unchanged from envoy/envoy.yaml. */
export interface EnvoyPorts {
  /** Port of the `ingress` listener (8000 in envoy.yaml). */
  listen: number;
  /** Port of the admin API (9901 in envoy.yaml). */
  admin: number;
  /**
   * Port of the `authz` cluster's endpoint, the ext_authz gRPC server (9001 in envoy.yaml); several ports
   * make that many endpoints of the cluster, which Envoy balances round robin (replicas of the sidecar).
   */
  authz: number | readonly number[];
  /** Port of the `bank` cluster's endpoint, the protected upstream (8080 in envoy.yaml). */
  bank: number;
  /** Port of the `ingress_tls` listener (8443 in envoy.yaml). */
  tls: number;
  /**
   * Port of the `otel_collector` cluster's endpoint, where Envoy exports its spans over OTLP/gRPC (4317 in
   * envoy.yaml): a test collector's (`startOtelCollector`). Left at 4317 when not given, where nothing needs
   * to listen: Envoy exports only requests that arrive with a sampled traceparent.
   */
  otelCollector?: number;
}

/** What {@link startDeployedEnvoy} needs besides the ports. */
export interface DeployedEnvoyOptions {
  /**
   * The certificate set the TLS listener uses (its server certificate and key, and the CA client certificates
   * must chain to); by default a fresh development set in a temporary folder removed on stop. Pass one when
   * the test needs its client certificates too.
   */
  tls?: DevTlsFiles;
  /**
   * `--concurrency`, Envoy's worker threads (default 1). Each thread keeps its own connections to the authz
   * cluster, so more threads spread the Check calls over more connections (and thus `--workers` processes).
   */
  concurrency?: number;
}

/** A started Envoy on envoy/envoy.yaml, ready to serve. */
export interface RunningEnvoy extends StartedEnvoy {
  /** `http://127.0.0.1:<listen>`, the ingress listener. */
  baseUrl: string;
  /** `https://127.0.0.1:<tls>`, the ingress_tls listener (its certificate names 127.0.0.1 and localhost). */
  tlsUrl: string;
  /** The certificate set of the TLS listener: trust `ca.cert`, present a client's cert and key. */
  tls: DevTlsFiles;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`envoy/envoy.yaml: expected a mapping at ${where}`);
  }
  return value as Record<string, unknown>;
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`envoy/envoy.yaml: expected a list at ${where}`);
  return value;
}

function named(items: unknown[], name: string, where: string): Record<string, unknown> {
  const matches = items.filter((item) => record(item, where).name === name);
  if (matches.length !== 1) {
    throw new Error(
      `envoy/envoy.yaml: expected exactly one ${where} named "${name}", found ${matches.length}`,
    );
  }
  return record(matches[0], `${where} ${name}`);
}

/** The `socket_address` of something with an `address` (admin, a listener, an endpoint). */
function socketAddress(holder: Record<string, unknown>, where: string): Record<string, unknown> {
  const socket = record(record(holder.address, `${where}.address`).socket_address, `${where}.socket_address`);
  if (typeof socket.port_value !== 'number') {
    throw new Error(`envoy/envoy.yaml: expected a numeric port_value at ${where}.socket_address`);
  }
  return socket;
}

function setClusterPort(clusters: unknown[], name: string, port: number): void {
  const where = `cluster ${name}`;
  const assignment = record(named(clusters, name, 'cluster').load_assignment, `${where}.load_assignment`);
  const endpoints = list(assignment.endpoints, `${where}.load_assignment.endpoints`).flatMap((locality) =>
    list(record(locality, `${where} endpoints`).lb_endpoints, `${where} lb_endpoints`),
  );
  if (endpoints.length === 0) throw new Error(`envoy/envoy.yaml: ${where} has no endpoints`);
  for (const lbEndpoint of endpoints) {
    const endpoint = record(record(lbEndpoint, `${where} lb_endpoint`).endpoint, `${where} endpoint`);
    socketAddress(endpoint, `${where} endpoint`).port_value = port;
  }
}

/**
 * Makes the cluster's one endpoint into one endpoint per port, each a copy of it with its port changed: a
 * cluster of several hosts (its lb_policy, ROUND_ROBIN unless set, picks among them).
 */
function setClusterPorts(clusters: unknown[], name: string, ports: readonly number[]): void {
  const where = `cluster ${name}`;
  const assignment = record(named(clusters, name, 'cluster').load_assignment, `${where}.load_assignment`);
  const localities = list(assignment.endpoints, `${where}.load_assignment.endpoints`);
  const endpoints = localities.length === 1 ? list(record(localities[0], where).lb_endpoints, where) : [];
  if (endpoints.length !== 1) {
    throw new Error(`envoy/envoy.yaml: expected ${where} to have exactly one endpoint to copy`);
  }
  const template = JSON.stringify(endpoints[0]);
  const copies = ports.map((port) => {
    const copy = record(JSON.parse(template), `${where} lb_endpoint`);
    socketAddress(record(copy.endpoint, `${where} endpoint`), `${where} endpoint`).port_value = port;
    return copy;
  });
  endpoints.splice(0, endpoints.length, ...copies);
}

function checkPort(port: number, name: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`invalid ${name} port: ${port}`);
}

/** A `{ filename }` data source of the TLS context, checked to name `expected` and then pointed at `file`. */
function setFilename(holder: unknown, expected: string, file: string, where: string): void {
  const source = record(holder, where);
  if (source.filename !== expected) {
    throw new Error(
      `envoy/envoy.yaml: expected ${where}.filename ${expected}, found ${String(source.filename)}`,
    );
  }
  source.filename = file;
}

/** Points the TLS listener's transport socket at the test's certificate set instead of .authz-dev/tls/. */
function setTlsFiles(listener: Record<string, unknown>, tls: DevTlsFiles): void {
  const where = 'listener ingress_tls';
  const chains = list(listener.filter_chains, `${where}.filter_chains`);
  if (chains.length !== 1) throw new Error(`envoy/envoy.yaml: expected one filter chain in ${where}`);
  const socket = record(
    record(chains[0], `${where} filter chain`).transport_socket,
    `${where} transport_socket`,
  );
  const context = record(socket.typed_config, `${where} transport_socket.typed_config`);
  const common = record(context.common_tls_context, `${where} common_tls_context`);
  const certificates = list(common.tls_certificates, `${where} tls_certificates`);
  if (certificates.length !== 1) throw new Error(`envoy/envoy.yaml: expected one certificate in ${where}`);
  const certificate = record(certificates[0], `${where} tls_certificates`);
  setFilename(
    certificate.certificate_chain,
    '.authz-dev/tls/server.crt',
    tls.server.cert,
    `${where} certificate_chain`,
  );
  setFilename(certificate.private_key, '.authz-dev/tls/server.key', tls.server.key, `${where} private_key`);
  const validation = record(common.validation_context, `${where} validation_context`);
  setFilename(validation.trusted_ca, '.authz-dev/tls/ca.crt', tls.ca.cert, `${where} trusted_ca`);
}

/**
 * Derives a test configuration from envoy/envoy.yaml by changing only port numbers, the listener addresses
 * to 127.0.0.1 so a test never listens on every interface, and the TLS listener's certificate files.
 *
 * Elements are found by name (listeners `ingress` and `ingress_tls`, clusters `authz`, `bank` and
 * `otel_collector`) and any unexpected shape throws, so a change to envoy.yaml either carries over to the
 * tests or breaks them loudly.
 *
 * A caller that only uses the plain listener (the bench, the fault runs) may leave out both the TLS port and
 * the certificate set: the `ingress_tls` listener is then left out, and no certificates are needed.
 *
 * @param ports - the ports to use instead of the ones in envoy.yaml
 * @param tls - the certificate set to use instead of .authz-dev/tls/
 * @returns the configuration as YAML text
 * @throws Error for a TLS port without a certificate set or the other way round
 */
export function envoyConfigFor(ports: Omit<EnvoyPorts, 'tls'> & { tls?: number }, tls?: DevTlsFiles): string {
  for (const [name, port] of Object.entries(ports)) {
    if (port === undefined) continue;
    for (const each of typeof port === 'number' ? [port] : port) checkPort(each, name);
  }
  if (typeof ports.authz !== 'number' && ports.authz.length === 0) {
    throw new Error('envoyConfigFor: give at least one authz port');
  }
  if ((ports.tls === undefined) !== (tls === undefined)) {
    throw new Error('envoyConfigFor: give both the TLS port and the certificate set, or neither');
  }
  const config = record(parse(readFileSync(envoyConfigPath, 'utf8')), 'the top level');

  socketAddress(record(config.admin, 'admin'), 'admin').port_value = ports.admin;

  const resources = record(config.static_resources, 'static_resources');
  const listeners = list(resources.listeners, 'static_resources.listeners');
  // Any other listener would bind its fixed port in every test Envoy, so parallel runs would collide.
  if (listeners.length !== 2) {
    throw new Error(
      `envoy/envoy.yaml: expected only listeners "ingress" and "ingress_tls", found ${listeners.length} listeners`,
    );
  }
  const listen = socketAddress(named(listeners, 'ingress', 'listener'), 'listener ingress');
  listen.address = '127.0.0.1';
  listen.port_value = ports.listen;
  const tlsListener = named(listeners, 'ingress_tls', 'listener');
  const tlsListen = socketAddress(tlsListener, 'listener ingress_tls');
  tlsListen.address = '127.0.0.1';
  if (ports.tls === undefined || tls === undefined) {
    listeners.splice(listeners.indexOf(tlsListener), 1);
  } else {
    tlsListen.port_value = ports.tls;
    setTlsFiles(tlsListener, tls);
  }

  const clusters = list(resources.clusters, 'static_resources.clusters');
  if (typeof ports.authz === 'number') setClusterPort(clusters, 'authz', ports.authz);
  else setClusterPorts(clusters, 'authz', ports.authz);
  setClusterPort(clusters, 'bank', ports.bank);
  if (ports.otelCollector !== undefined) setClusterPort(clusters, 'otel_collector', ports.otelCollector);

  return stringify(config, { lineWidth: 0 });
}

/**
 * Starts Envoy on {@link envoyConfigFor}'s configuration (envoy/envoy.yaml with the test's ports and
 * certificates) and waits until it is ready; see {@link startEnvoy}.
 *
 * @param ports - the ports for the listeners, admin API and clusters; a free one for the TLS listener when
 *   left out
 * @param options - the TLS listener's certificate set; by default a fresh development set
 * @throws Error, including Envoy's output, if Envoy exits or is not ready within 20 s
 */
export async function startDeployedEnvoy(
  ports: Omit<EnvoyPorts, 'tls'> & { tls?: number },
  options: DeployedEnvoyOptions = {},
): Promise<RunningEnvoy> {
  let tlsPort = ports.tls;
  // A free port that is none of the others, which the caller has chosen but maybe not bound yet.
  while (tlsPort === undefined) {
    const port = await freePort();
    const taken = [ports.listen, ports.admin, ports.authz, ports.bank, ports.otelCollector ?? []];
    if (!taken.flat().includes(port)) tlsPort = port;
  }
  const certificates =
    options.tls === undefined ? await mkdtemp(path.join(tmpdir(), 'envoy-tls-')) : undefined;
  const tls = options.tls ?? (await ensureDevCertificates(certificates!));
  try {
    const envoy = await startEnvoy({
      config: { text: envoyConfigFor({ ...ports, tls: tlsPort }, tls) },
      admin: ports.admin,
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    });
    return {
      ...envoy,
      baseUrl: `http://127.0.0.1:${ports.listen}`,
      tlsUrl: `https://127.0.0.1:${tlsPort}`,
      tls,
      stop: async () => {
        await envoy.stop();
        if (certificates !== undefined) await rm(certificates, { recursive: true, force: true });
      },
    };
  } catch (error) {
    if (certificates !== undefined) await rm(certificates, { recursive: true, force: true });
    throw error;
  }
}
