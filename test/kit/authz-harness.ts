import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  credentials,
  loadPackageDefinition,
  Metadata,
  makeGenericClientConstructor,
  type CallOptions,
  type Client,
  type ClientUnaryCall,
  type ServiceClientConstructor,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import type { Logger } from 'pino';
import { PROTO_LOADER_OPTIONS } from '../../src/envoy/authorization-proto.js';
import { createLogger } from '../../src/log/create-logger.js';
import { loadPolicy, loadPolicyDirectory } from '../../src/policy/load-policy.js';
import { isPolicyDirectory } from '../../src/policy/read-policy-directory.js';
import { startAuthzServer, type RunningAuthzServer } from '../../src/server/authz-server.js';
import type { CheckTracing } from '../../src/tracing/check-tracing.js';
import { DEMO_AUDIENCE, DEMO_ISSUER, DEMO_REALM, demoPolicyText } from './inline-policy.js';
import { waitUntil } from './wait-until.js';

/** The issuer, audience and realm every integration policy uses (those of the repo's policy.yaml). */
export const ISSUER = DEMO_ISSUER;
export const AUDIENCE = DEMO_AUDIENCE;
export const REALM = DEMO_REALM;
export const TOKEN_DEFAULTS = Object.freeze({ issuer: ISSUER, audience: AUDIENCE });

/** A log destination kept in memory: the production logger (createLogger) writing into an array. */
export interface LogSink {
  readonly logger: Logger;
  /** Every raw line written so far, in order. */
  lines(): string[];
  /** Every line parsed as JSON. Throws if a line is not JSON. */
  records(): Record<string, unknown>[];
}

export function createLogSink(): LogSink {
  const written: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: {
      write: (chunk: string) => {
        for (const line of chunk.split('\n')) if (line !== '') written.push(line);
      },
    },
  });
  return {
    logger,
    lines: () => [...written],
    records: () => written.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

export interface PolicyOptions {
  /** `jwks_uri: ...` or `jwks_file: ...` for the one issuer. */
  readonly keys: { readonly jwksUri: string } | { readonly jwksFile: string };
  /** Extra issuer settings, e.g. `{ jwks_refresh_cooldown: '30s' }`. */
  readonly issuerSettings?: Readonly<Record<string, string>>;
}

/**
 * The repo's policy.yaml shape (same issuer, audience, realm and routes), plus a route with an empty
 * scope list (`GET /profile`: any valid token).
 */
export function policyYaml(options: PolicyOptions): string {
  return demoPolicyText(
    [
      '{ methods: [GET], path: /balance, scopes: [view:balance] }',
      '{ methods: [POST], path: /transfer, scopes: [transfer:funds] }',
      '{ path: /healthz, public: true }',
      "{ methods: [GET], path: '/accounts/{id}/balance', scopes: [view:balance] }",
      '{ methods: [GET], path: /profile, scopes: [] }',
    ],
    options,
  );
}

/** A fresh temporary folder; `remove()` deletes it with everything in it. */
export async function createTempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes `text` to `dir/name` and returns the file's path. */
export async function writeTextFile(dir: string, name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

/** `envoy.config.core.v3.HeaderValueOption` as a proto-loader client decodes it (PROTO_LOADER_OPTIONS). */
export interface HeaderOptionView {
  readonly header: { readonly key: string; readonly value: string } | null;
  readonly append_action: number;
}

/** `envoy.service.auth.v3.CheckResponse` as a proto-loader client decodes it (PROTO_LOADER_OPTIONS). */
export interface CheckResponseView {
  readonly status: { readonly code: number; readonly message: string } | null;
  readonly http_response?: string;
  readonly ok_response?: {
    readonly headers: readonly HeaderOptionView[];
    readonly headers_to_remove: readonly string[];
  } | null;
  readonly denied_response?: {
    readonly status: { readonly code: number } | null;
    readonly headers: readonly HeaderOptionView[];
    readonly body: string;
  } | null;
}

/** The value of header `name` among `options` (undefined when absent); fails if it is set twice. */
export function headerValue(options: readonly HeaderOptionView[], name: string): string | undefined {
  const found = options.filter((option) => option.header?.key === name);
  if (found.length > 1) throw new Error(`header ${name} is set ${found.length} times`);
  return found[0]?.header?.value;
}

/** The JSON body of a denial. */
export function deniedBody(response: CheckResponseView): Record<string, unknown> {
  const denied = response.denied_response ?? undefined;
  if (denied === undefined) throw new Error(`not a denial: ${JSON.stringify(response)}`);
  return JSON.parse(denied.body) as Record<string, unknown>;
}

export interface HttpCheckInit {
  readonly method: string;
  readonly path: string;
  /** The Authorization header value, if any. */
  readonly authorization?: string;
  /** Envoy's request id (`x-request-id`). */
  readonly id?: string;
  /** The request's host (`:authority` and `attributes.request.http.host`; default `bank.example`). */
  readonly host?: string;
  /** `attributes.context_extensions`, as a route or virtual host sets them (e.g. `{ service: 'bank' }`). */
  readonly contextExtensions?: Readonly<Record<string, string>>;
  /** More request headers (lower-case names), e.g. a client's `traceparent`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * A CheckRequest as Envoy's ext_authz filter sends it without `encode_raw_headers`: the request's
 * attributes, with headers as a map of lower-cased names (pseudo-headers included).
 */
export function httpCheckRequest(init: HttpCheckInit): Record<string, unknown> {
  const id = init.id ?? `req-${Math.random().toString(36).slice(2)}`;
  const host = init.host ?? 'bank.example';
  const headers: Record<string, string> = {
    ':authority': host,
    ':method': init.method,
    ':path': init.path,
    ':scheme': 'https',
    'user-agent': 'curl/8.5.0',
    'x-request-id': id,
    'x-forwarded-proto': 'https',
  };
  if (init.authorization !== undefined) headers['authorization'] = init.authorization;
  Object.assign(headers, init.headers);
  return {
    attributes: {
      request: {
        http: {
          id,
          method: init.method,
          path: init.path,
          host,
          scheme: 'https',
          protocol: 'HTTP/1.1',
          headers,
        },
      },
      ...(init.contextExtensions === undefined ? {} : { context_extensions: { ...init.contextExtensions } }),
    },
  };
}

/** A call's deadline: a guard against a hang, not a measure of speed (long enough for a loaded machine). */
const CALL_TIMEOUT_MS = 15_000; // 15 seconds

type UnaryMethod<Request, Response> = (
  request: Request,
  metadata: Metadata,
  options: CallOptions,
  callback: (error: ServiceError | null, response?: Response) => void,
) => ClientUnaryCall;

function unary<Response>(
  client: Client,
  method: string,
  request: unknown,
  timeoutMs: number,
  metadata?: Readonly<Record<string, string>>,
): Promise<Response> {
  const call = (client as unknown as Record<string, UnaryMethod<unknown, Response>>)[method];
  if (call === undefined) throw new Error(`the client has no method ${method}`);
  const options = { deadline: Date.now() + timeoutMs };
  const sent = new Metadata();
  for (const [key, value] of Object.entries(metadata ?? {})) sent.set(key, value);
  return new Promise<Response>((resolve, reject) => {
    const done = (error: ServiceError | null, response?: Response) => {
      if (error !== null) reject(error);
      else if (response === undefined) reject(new Error(`${method} answered nothing`));
      else resolve(response);
    };
    call.call(client, request, sent, options, done);
  });
}

/** A real gRPC client of `envoy.service.auth.v3.Authorization`, built from the project's protos. */
export interface CheckClient {
  /** One Check; `metadata` is sent as the call's gRPC metadata (e.g. Envoy's `traceparent`). */
  check(request: unknown, metadata?: Readonly<Record<string, string>>): Promise<CheckResponseView>;
  close(): void;
}

export function connectCheckClient(port: number): CheckClient {
  const definition = loadSync('envoy/service/auth/v3/external_auth.proto', PROTO_LOADER_OPTIONS);
  const loaded = loadPackageDefinition(definition) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: ServiceClientConstructor } } } };
  };
  const { Authorization } = loaded.envoy.service.auth.v3;
  const client = new Authorization(`127.0.0.1:${port}`, credentials.createInsecure());
  return {
    check: (request, metadata) =>
      unary<CheckResponseView>(client, 'Check', request, CALL_TIMEOUT_MS, metadata),
    close: () => client.close(),
  };
}

/** A real gRPC client of `grpc.health.v1.Health`, built from the grpc-health-check package's definition. */
export interface HealthClient {
  check(service: string): Promise<{ status: string }>;
  close(): void;
}

export function connectHealthClient(port: number): HealthClient {
  const Health = makeGenericClientConstructor(
    healthService as unknown as ServiceDefinition,
    'grpc.health.v1.Health',
  );
  const client = new Health(`127.0.0.1:${port}`, credentials.createInsecure());
  return {
    check: (service) => unary<{ status: string }>(client, 'Check', { service }, CALL_TIMEOUT_MS),
    close: () => client.close(),
  };
}

/** The production server, in this process, on a free port of 127.0.0.1, with a Check client connected. */
export interface InProcessAuthz {
  /** The policy it serves: `policy.yaml` in a fresh temporary folder. */
  readonly policyFile: string;
  /** Everything the server logs. */
  readonly sink: LogSink;
  readonly server: RunningAuthzServer;
  readonly client: CheckClient;
  /** Closes the client, then the server (1 s grace), then deletes the temporary folder. */
  stop(): Promise<void>;
}

export interface InProcessAuthzOptions {
  /** The policy text to serve. */
  readonly policy: string;
  /** How the temporary folder's name starts, e.g. `authz-grpc-`. */
  readonly tempPrefix: string;
  /** The server's clock (default: the real one). */
  readonly now?: () => number;
  /** Tracing of Checks (default: off). */
  readonly tracing?: CheckTracing;
}

/**
 * Waits until the server logging into `sink` has ended the start-up fetch of every issuer of the policy in
 * `policyFile` (each with a `jwks_fetch` line, `ok` or `error`). A Check that comes during a fetch waits
 * for it at most `jwks_fetch_wait` (500 ms by default) and is then answered 503: a test that did not mean
 * to race the start-up fetch waits for it first, so that a slow machine never turns its answer into a 503.
 */
export async function startupFetchesEnded(sink: LogSink, policyFile: string): Promise<void> {
  // A policy directory may hold refused files, which loadPolicy refuses: its files in force are served.
  const policy = (await isPolicyDirectory(policyFile))
    ? (await loadPolicyDirectory(policyFile, undefined)).inForce.policy
    : await loadPolicy(policyFile);
  const issuers = policy.issuers.size;
  await waitUntil(
    () =>
      new Set(
        sink
          .records()
          .filter((record) => record['event'] === 'jwks_fetch' && record['trigger'] === 'initial')
          .map((record) => record['issuer']),
      ).size,
    (ended) => ended >= issuers,
    { timeoutMs: 10_000, what: `the start-up key set fetches of ${issuers} issuers` },
  );
}

/** Writes the policy to a temporary folder, starts startAuthzServer on it and connects a Check client. */
export async function startInProcessAuthz(options: InProcessAuthzOptions): Promise<InProcessAuthz> {
  const temp = await createTempDir(options.tempPrefix);
  try {
    const policyFile = await writeTextFile(temp.dir, 'policy.yaml', options.policy);
    const sink = createLogSink();
    const server = await startAuthzServer({
      policyFile,
      listen: '127.0.0.1:0',
      logger: sink.logger,
      now: options.now,
      ...(options.tracing === undefined ? {} : { tracing: options.tracing }),
    });
    const client = connectCheckClient(server.port);
    await startupFetchesEnded(sink, policyFile);
    return {
      policyFile,
      sink,
      server,
      client,
      stop: async () => {
        client.close();
        await server.close({ graceMs: 1000 });
        await temp.remove();
      },
    };
  } catch (error) {
    await temp.remove();
    throw error;
  }
}
