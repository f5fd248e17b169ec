import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkClient, type CheckClient, type CheckResponse } from './authorization-service.js';
import type { BenchContext } from './bench-context.js';
import { freePorts } from '../test/kit/free-port.js';
import { cleanEnv, repoRoot, startedLine, startProcess, type KitProcess } from '../test/kit/process.js';

/** A gRPC Authorization server under test, on the server core, with a client for checking its answers. */
export interface GrpcServer {
  readonly name: string;
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  readonly process: KitProcess;
  readonly client: CheckClient;
  stop(): Promise<void>;
}

/** The answer a scenario needs: CheckResponse.status's gRPC code and, for a denial, the HTTP status. */
export interface Expected {
  readonly label: string;
  readonly grpc: number;
  readonly http?: number;
}

export const ALLOW: Expected = { label: 'OK (allow)', grpc: 0 };
export const UNAUTHENTICATED_401: Expected = { label: 'UNAUTHENTICATED, HTTP 401', grpc: 16, http: 401 };
export const PERMISSION_DENIED_403: Expected = { label: 'PERMISSION_DENIED, HTTP 403', grpc: 7, http: 403 };

/** Whether `response` is the answer `expected` describes. */
export function answers(response: CheckResponse, expected: Expected): boolean {
  return (
    (response.status?.code ?? 0) === expected.grpc &&
    (expected.http === undefined || response.denied_response?.status?.code === expected.http)
  );
}

/** "gRPC status 16, HTTP 401". */
export function describeAnswer(response: CheckResponse): string {
  const http = response.denied_response?.status?.code;
  return `gRPC status ${response.status?.code ?? 0}${http === undefined ? '' : `, HTTP ${http}`}`;
}

/**
 * Starts a server on the server core, its output going to a file, and waits for its `started` line; the
 * server is stopped when the bench ends, however it ends.
 * @throws Error with its output when it exits first (e.g. the policy is refused) or does not start in 20 s
 */
async function startGrpcServer(
  context: BenchContext,
  name: string,
  args: readonly string[],
  cwd: string,
  /** Where it listens, when `args` say it; else the `port` of its started line. */
  address?: string,
  /** Variables added to its (cleaned) environment, e.g. OTEL_* to turn tracing on. */
  env: Readonly<Record<string, string>> = {},
): Promise<GrpcServer> {
  const child = startProcess({
    name,
    command: process.execPath,
    args,
    logFile: context.logFile(name),
    cpu: context.cpus?.server,
    cwd,
    env: cleanEnv(env),
  });
  context.onCleanup(child.stop); // also when it does not start
  const started = await startedLine(child, 20_000);
  const listening = address ?? `127.0.0.1:${String(started['port'])}`;
  const client = checkClient(listening);
  const server: GrpcServer = {
    name,
    address: listening,
    process: child,
    client,
    stop: async () => {
      client.close();
      await child.stop();
    },
  };
  context.onCleanup(server.stop);
  return server;
}

const REGISTER_TYPESCRIPT = pathToFileURL(path.join(repoRoot, 'bench', 'register-typescript.mjs')).href;

/**
 * Starts a limit server (limit-server.ts) on the server core: `empty` answers OK without looking, `verify`
 * checks the bearer token's signature against `publicJwk` first.
 */
export async function startLimitServer(
  context: BenchContext,
  mode: 'empty' | 'verify',
  publicJwk: object,
): Promise<GrpcServer> {
  return startGrpcServer(
    context,
    `limit server (${mode})`,
    [
      '--import',
      REGISTER_TYPESCRIPT,
      path.join(repoRoot, 'bench', 'limit-server.ts'),
      mode,
      ...(mode === 'verify' ? [JSON.stringify(publicJwk)] : []),
    ],
    repoRoot,
  );
}

/**
 * Starts the measured build's `authz serve --policy POLICY --listen 127.0.0.1:PORT FLAGS...` on the server
 * core, with `env` added to a cleaned environment (no AUTHZ_* nor OTEL_* of the machine's), its log lines
 * going to a file, and waits for its `started` line.
 *
 * @throws Error with its output when it exits first (e.g. the policy is refused)
 */
export async function startAuthzServer(
  context: BenchContext,
  name: string,
  policyFile: string,
  flags: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): Promise<GrpcServer> {
  const [port] = await freePorts(1);
  const address = `127.0.0.1:${port}`;
  const args = [context.cli, 'serve', '--policy', policyFile, '--listen', address, ...flags];
  return startGrpcServer(context, name, args, context.target, address, env);
}
