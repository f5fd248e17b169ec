import { Server, ServerCredentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { createKeyRing } from '../authn/key-ring.js';
import { fetchKeySetOverHttp, type FetchKeySet } from '../authn/read-key-set.js';
import { loadAuthorizationService } from '../envoy/authorization-proto.js';
import type { CheckRequestMessage, CheckResponseMessage } from '../envoy/check-messages.js';
import { createCheckHandler, type ActivePolicy } from '../envoy/check-handler.js';
import { loadPolicy } from '../policy/load-policy.js';

/** The gRPC service name health is reported for (besides the overall "" service). */
export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';

export interface AuthzServerOptions {
  readonly policyFile: string;
  /** `host:port`; port 0 picks a free port. */
  readonly listen: string;
  readonly logger: Logger;
  readonly fetchKeySet?: FetchKeySet;
  readonly now?: () => number;
}

export interface RunningAuthzServer {
  /** The port actually bound. */
  readonly port: number;
  /** Stops taking calls, lets calls in flight finish for up to `graceMs`, then closes. */
  close(graceMs?: number): Promise<void>;
}

/** Server limits: a CheckRequest carries headers only (no body is forwarded), so 1 MiB is ample. */
const SERVER_OPTIONS = {
  'grpc.max_receive_message_length': 1024 * 1024, // 1 MiB
  'grpc.max_send_message_length': 64 * 1024, // 64 KiB
};

/**
 * Loads the policy, then serves ext_authz and gRPC health on one port. Health is SERVING only once the
 * policy is loaded: a bad policy means the process never starts listening.
 *
 * @throws PolicyError when the policy cannot be used; Error when the address cannot be bound.
 */
export async function startAuthzServer(options: AuthzServerOptions): Promise<RunningAuthzServer> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const policy = await loadPolicy(options.policyFile);
  const keyRing = createKeyRing(policy, {
    fetchKeySet: options.fetchKeySet ?? fetchKeySetOverHttp,
    now,
    onFetch: (event) => {
      if (event.outcome === 'ok') logger.info({ event: 'jwks_fetch', ...event }, 'issuer keys fetched');
      else logger.warn({ event: 'jwks_fetch', ...event }, 'issuer keys could not be fetched');
    },
  });
  const active: ActivePolicy = { policy, keyRing };
  const check = createCheckHandler({ active: () => active, logger, now });

  const health = new HealthImplementation({ '': 'NOT_SERVING', [AUTHORIZATION_SERVICE]: 'NOT_SERVING' });
  const server = new Server(SERVER_OPTIONS);
  health.addToServer(server);
  server.addService(loadAuthorizationService(), {
    Check: (
      call: { request: CheckRequestMessage },
      callback: (error: Partial<ServiceError> | null, response?: CheckResponseMessage) => void,
    ) => {
      check(call.request).then(
        (response) => callback(null, response),
        (error: unknown) => {
          logger.error({ event: 'check_failed', err: error }, 'internal error while checking a request');
          callback({ code: GrpcStatus.INTERNAL, details: 'internal error' });
        },
      );
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.listen, ServerCredentials.createInsecure(), (error, bound) =>
      error === null
        ? resolve(bound)
        : reject(new Error(`cannot listen on ${options.listen}: ${error.message}`)),
    );
  });
  health.setStatus('', 'SERVING');
  health.setStatus(AUTHORIZATION_SERVICE, 'SERVING');
  logger.info(
    { event: 'started', listen: options.listen, port, policy: policy.source, policy_version: policy.version },
    'authz server listening',
  );
  void keyRing.prefetch(); // warm the key cache; failures are logged by onFetch and retried on demand

  return {
    port,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        health.setStatus(AUTHORIZATION_SERVICE, 'NOT_SERVING');
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
