import {
  Channel,
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  type CallOptions,
  type Client,
  type ServiceClientConstructor,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { PROTO_LOADER_OPTIONS } from '../../src/envoy/authorization-proto.js';
import type { CheckResponseView } from './authz-harness.js';

/**
 * A gRPC connection of its own to a server, with both the Check and the Health service on it. grpc-js
 * shares one connection among all clients of a target by default; under `authz serve --workers N` each
 * connection is handed to one worker, so a test that wants to reach several workers opens several of these
 * (as Envoy does, one per worker thread).
 */
export interface SeparateConnection {
  check(request: unknown): Promise<CheckResponseView>;
  /** The health status reported for `service` ('' is the whole server). */
  health(service: string): Promise<string>;
  close(): void;
}

// A guard against a hang, not a measure of speed: long enough for a burst of calls on a loaded machine.
const CALL_TIMEOUT_MS = 15_000; // 15 seconds

const authorizationService = (() => {
  let loaded: ServiceClientConstructor | undefined;
  return () =>
    (loaded ??= (
      loadPackageDefinition(
        loadSync('envoy/service/auth/v3/external_auth.proto', PROTO_LOADER_OPTIONS),
      ) as unknown as {
        envoy: { service: { auth: { v3: { Authorization: ServiceClientConstructor } } } };
      }
    ).envoy.service.auth.v3.Authorization);
})();

const HealthClient = makeGenericClientConstructor(
  healthService as unknown as ServiceDefinition,
  'grpc.health.v1.Health',
);

type UnaryMethod<Response> = (
  request: unknown,
  options: CallOptions,
  callback: (error: ServiceError | null, response?: Response) => void,
) => void;

function unary<Response>(client: Client, method: string, request: unknown): Promise<Response> {
  const call = (client as unknown as Record<string, UnaryMethod<Response>>)[method];
  if (call === undefined) throw new Error(`the client has no method ${method}`);
  return new Promise<Response>((resolve, reject) => {
    call.call(client, request, { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, response) => {
      if (error !== null) reject(error);
      else if (response === undefined) reject(new Error(`${method} answered nothing`));
      else resolve(response);
    });
  });
}

/** Opens a connection of its own to 127.0.0.1:`port` (made on the first call). */
export function openSeparateConnection(port: number): SeparateConnection {
  const target = `127.0.0.1:${port}`;
  const insecure = credentials.createInsecure();
  // A subchannel pool of its own: no other client of the target shares this connection.
  const channel = new Channel(target, insecure, { 'grpc.use_local_subchannel_pool': 1 });
  const Authorization = authorizationService();
  const checks = new Authorization(target, insecure, { channelOverride: channel });
  const health = new HealthClient(target, insecure, { channelOverride: channel });
  return {
    check: (request) => unary<CheckResponseView>(checks, 'Check', request),
    health: async (service) => (await unary<{ status: string }>(health, 'Check', { service })).status,
    close: () => {
      checks.close();
      health.close();
      channel.close();
    },
  };
}
