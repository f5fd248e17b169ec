import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { ensureDevCertificates } from '../../src/demo/dev-tls/dev-certificates.js';
import type { DevTlsFiles } from '../../src/demo/dev-tls/dev-certificates.js';
import { envoyBinary, repoRoot } from './envoy-binary.js';

/** The deployed Envoy configuration; tests derive theirs from it so the two cannot drift apart. */
export const envoyConfigPath: string = path.join(repoRoot, 'envoy', 'envoy.yaml');

/** The ports a test Envoy uses; everything else comes unchanged from envoy/envoy.yaml. */
export interface EnvoyPorts {
  /** Port of the `ingress` listener (8000 in envoy.yaml). */
  listen: number;
  /** Port of the admin API (9901 in envoy.yaml). */
  admin: number;
  /** Port of the `authz` cluster's endpoint, the ext_authz gRPC server (9001 in envoy.yaml). */
  authz: number;
  /** Port of the `bank` cluster's endpoint, the protected upstream (8080 in envoy.yaml). */
  bank: number;
  /** Port of the `ingress_tls` listener (8443 in envoy.yaml). */
  tls: number;
}

/** What {@link startEnvoy} needs besides the ports. */
export interface EnvoyOptions {
  /**
   * The certificate set the TLS listener uses (its server certificate and key, and the CA client certificates
   * must chain to); by default a fresh development set in Envoy's temporary folder. Pass one when the test
   * needs its client certificates too.
   */
  tls?: DevTlsFiles;
}

/** A started Envoy process, ready to serve. */
export interface RunningEnvoy {
  /** `http://127.0.0.1:<listen>`, the ingress listener. */
  baseUrl: string;
  /** `https://127.0.0.1:<tls>`, the ingress_tls listener (its certificate names 127.0.0.1 and localhost). */
  tlsUrl: string;
  /** The certificate set of the TLS listener: trust `ca.cert`, present a client's cert and key. */
  tls: DevTlsFiles;
  /** `http://127.0.0.1:<admin>`, the admin API. */
  adminUrl: string;
  /** Stops Envoy (SIGTERM, then SIGKILL after 3 s) and removes its temp dir; safe to call more than once. */
  stop(): Promise<void>;
  /** The last 64 KiB of Envoy's stdout and stderr, for failure messages. */
  output(): string;
}

const OUTPUT_LIMIT = 64 * 1024;
const READY_TIMEOUT_MS = 20_000;
const KILL_AFTER_MS = 3_000;

/**
 * Finds a TCP port on 127.0.0.1 that is free right now.
 *
 * @returns a port number the caller should bind soon (another process could take it in between)
 */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * Finds several distinct free TCP ports on 127.0.0.1.
 *
 * All listeners are held open until every port is known: calling {@link freePort} repeatedly could hand out
 * the same port twice, because the kernel may reuse a port as soon as the probe socket closes.
 *
 * @param count - how many ports
 * @returns `count` distinct port numbers
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      const address = server.address();
      if (address === null || typeof address === 'string')
        throw new Error('listening socket has no TCP port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
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
 * Elements are found by name (listeners `ingress` and `ingress_tls`, clusters `authz` and `bank`) and any
 * unexpected shape throws, so a change to envoy.yaml either carries over to the tests or breaks them loudly.
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
  for (const [name, port] of Object.entries(ports)) checkPort(port, name);
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
  setClusterPort(clusters, 'authz', ports.authz);
  setClusterPort(clusters, 'bank', ports.bank);

  return stringify(config, { lineWidth: 0 });
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
let startCount = 0;

/** Kills Envoys that a crashed or interrupted test run did not stop, so none outlives the test worker. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/**
 * Unique per process and call. Hot restart is disabled, so Envoy should not use the base id at all; a
 * distinct one anyway keeps parallel Envoys apart should that ever change (shared memory and the hot-restart
 * domain socket are named after it).
 */
function uniqueBaseId(): number {
  return (process.pid % 100_000) * 1_000 + (startCount++ % 1_000);
}

async function isReady(adminUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${adminUrl}/ready`, { signal: AbortSignal.timeout(1_000) });
    const body = await response.text();
    return response.status === 200 && body.trim() === 'LIVE';
  } catch {
    return false;
  }
}

/** A free port that is none of `taken`, which the caller has chosen but maybe not bound yet. */
async function freePortBesides(taken: readonly number[]): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (!taken.includes(port)) return port;
  }
}

/**
 * Starts the pinned Envoy with {@link envoyConfigFor}'s configuration and waits until its admin API reports
 * `LIVE` on /ready, i.e. the listeners are bound and the static clusters are initialised.
 *
 * Flags: `--disable-hot-restart` so no shared memory or domain socket is taken and several Envoys can run at
 * once, `--concurrency 1` because tests need one worker thread, not one per core.
 *
 * @param ports - the ports for the listeners, admin API and both clusters; a free one for the TLS listener
 *   when `tls` is left out
 * @param options - the TLS listener's certificate set; by default a fresh development set
 * @returns the running Envoy
 * @throws Error, including Envoy's output, if Envoy exits or is not ready within 20 s
 */
export async function startEnvoy(
  ports: Omit<EnvoyPorts, 'tls'> & { tls?: number },
  options: EnvoyOptions = {},
): Promise<RunningEnvoy> {
  const binary = envoyBinary();
  const dir = await mkdtemp(path.join(tmpdir(), 'envoy-e2e-'));
  const all: EnvoyPorts = {
    ...ports,
    tls: ports.tls ?? (await freePortBesides([ports.listen, ports.admin, ports.authz, ports.bank])),
  };
  const tls = options.tls ?? (await ensureDevCertificates(path.join(dir, 'dev')));
  const config = envoyConfigFor(all, tls);
  const configFile = path.join(dir, 'envoy.yaml');
  await writeFile(configFile, config);

  const args = [
    '-c',
    configFile,
    '--log-level',
    'warn',
    '--base-id',
    String(uniqueBaseId()),
    '--disable-hot-restart',
    '--concurrency',
    '1',
  ];
  installExitHook();
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);

  let log = '';
  const collect = (chunk: string): void => {
    log += chunk;
    if (log.length > OUTPUT_LIMIT) log = log.slice(-OUTPUT_LIMIT);
  };
  child.stdout!.setEncoding('utf8').on('data', collect);
  child.stderr!.setEncoding('utf8').on('data', collect);

  let exitReason: string | undefined;
  // 'close' rather than 'exit': it comes after the output pipes are drained, so error messages are complete.
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      exitReason ??= signal === null ? `exit code ${code}` : `signal ${signal}`;
      running.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      exitReason ??= `spawn failed: ${error.message}`;
      running.delete(child);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (exitReason === undefined) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    })());

  const adminUrl = `http://127.0.0.1:${ports.admin}`;
  const fail = async (problem: string): Promise<never> => {
    await stop();
    throw new Error(`Envoy ${problem}.\nCommand: ${binary} ${args.join(' ')}\nOutput:\n${log}`);
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exitReason !== undefined) return fail(`exited during start-up (${exitReason})`);
    if (await isReady(adminUrl)) break;
    if (Date.now() > deadline) return fail(`was not ready within ${READY_TIMEOUT_MS / 1000} s`);
    await Promise.race([delay(100), exited]);
  }

  return {
    baseUrl: `http://127.0.0.1:${ports.listen}`,
    tlsUrl: `https://127.0.0.1:${all.tls}`,
    tls,
    adminUrl,
    stop,
    output: () => log,
  };
}
