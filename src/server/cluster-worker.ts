import type { ServingStatus } from 'grpc-health-check';
import type { Registry } from 'prom-client';
import type { Environment } from '../args/environment.js';
import type { ClusterMember } from './cluster-member.js';
import { isPrimaryMessage, WORKER_NUMBER_VARIABLE, type WorkerMessage } from './cluster-messages.js';

/**
 * Which worker this process is, as the primary set it at fork.
 * @throws Error when the variable is missing or malformed: a process forked by something else.
 */
export function readWorkerNumber(env: Environment): number {
  const text = env[WORKER_NUMBER_VARIABLE] ?? '';
  const worker = /^[1-9]\d{0,2}$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(worker)) {
    throw new Error(`a cluster worker needs ${WORKER_NUMBER_VARIABLE} from the primary that forks it`);
  }
  return worker;
}

/** What {@link joinCluster} needs. */
export interface JoinClusterOptions {
  readonly worker: number;
  /** Answer the primary's metrics requests from this registry (with `--metrics-listen`). */
  readonly registry?: Registry;
}

/**
 * The worker's side of the cluster, over the IPC channel to the primary (process.send / 'message'): what its
 * server reports health and start-up through, and the answers to the primary's metrics requests. Only the
 * primary serves `/metrics`; it adds up the workers' registries (prom-client's AggregatorRegistry.aggregate).
 */
export function joinCluster(options: JoinClusterOptions): ClusterMember {
  let allServing = false;
  const verdictListeners: (() => void)[] = [];
  const send = (message: WorkerMessage) => {
    // Once the primary is gone the channel is closed, and the cluster module ends this process anyway. A
    // write that fails because it has just gone (EPIPE) goes to the callback, which has nothing to add: as an
    // unhandled 'error' event it would end this worker with a stack trace instead of its own shutdown.
    if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
  };

  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message) || message.type === 'authz:secrets') return; // secrets: receiveSecrets
    if (message.type === 'authz:verdict') {
      allServing = message.allServing;
      for (const listener of verdictListeners) listener();
      return;
    }
    const { id } = message;
    const { registry } = options;
    if (registry === undefined) {
      send({ type: 'authz:metrics-response', id, error: 'this worker keeps no metrics' });
      return;
    }
    registry.getMetricsAsJSON().then(
      (metrics) => send({ type: 'authz:metrics-response', id, metrics }),
      (error: unknown) => send({ type: 'authz:metrics-response', id, error: String(error) }),
    );
  });

  return {
    worker: options.worker,
    listening: ({ port, policy, policyVersion }) =>
      send({ type: 'authz:listening', port, policy, policyVersion }),
    reportHealth: (status: ServingStatus) => send({ type: 'authz:health', status }),
    allServing: () => allServing,
    onVerdict: (listener) => void verdictListeners.push(listener),
  };
}

/** What the primary hands every worker at start (cluster-messages.ts, SecretsMessage). */
export interface ClusterSecrets {
  readonly dpopNonceKey: Uint8Array;
}

/** How long a worker waits for its secrets before it gives up starting, in ms. */
const SECRETS_TIMEOUT_MS = 30_000; // 30 seconds: a guard against a primary that never answers

/**
 * Asks the primary for the secrets every worker shares, over the IPC channel, and resolves with its answer.
 * @throws Error when there is no channel to a primary, or no answer within 30 s.
 */
export function receiveSecrets(): Promise<ClusterSecrets> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined || !process.connected) {
      reject(new Error('a cluster worker needs the IPC channel to its primary'));
      return;
    }
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error(`no answer from the primary within ${SECRETS_TIMEOUT_MS} ms`));
    }, SECRETS_TIMEOUT_MS);
    const onMessage = (message: unknown) => {
      if (!isPrimaryMessage(message) || message.type !== 'authz:secrets') return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve({ dpopNonceKey: Buffer.from(message.dpopNonceKey, 'base64url') });
    };
    // Listening before asking: a message that comes with no listener yet would be lost.
    process.on('message', onMessage);
    process.send({ type: 'authz:secrets-request' } satisfies WorkerMessage, undefined, undefined, (error) => {
      if (error === null) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      reject(error);
    });
  });
}
