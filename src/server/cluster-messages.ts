import type { ServingStatus } from 'grpc-health-check';

/*
 * What the primary of `authz serve --workers N` and its workers say to each other over the cluster's IPC
 * channel (JSON). Each worker serves and decides on its own; these messages only join up what must be seen
 * as one service: start-up, health and metrics. Policy reloads need none (each worker watches the file,
 * and SIGHUP is passed on as a signal).
 */

/** Worker to primary: the gRPC server is listening (the primary logs `started` once all are). */
export interface ListeningMessage {
  readonly type: 'authz:listening';
  readonly port: number;
  /** The policy file and the version of the policy the worker started with. */
  readonly policy: string;
  readonly policyVersion: string;
}

/** Worker to primary: this worker's own health changed. */
export interface HealthMessage {
  readonly type: 'authz:health';
  readonly status: ServingStatus;
}

/** Primary to worker: whether every worker is SERVING (what each worker's health service then reports). */
export interface VerdictMessage {
  readonly type: 'authz:verdict';
  readonly allServing: boolean;
}

/** Primary to worker: send your metrics, as `Registry.getMetricsAsJSON()` gives them. */
export interface MetricsRequestMessage {
  readonly type: 'authz:metrics-request';
  readonly id: number;
}

/** Worker to primary: the answer to one metrics request. */
export interface MetricsResponseMessage {
  readonly type: 'authz:metrics-response';
  readonly id: number;
  /** The worker registry's metrics; undefined when collecting them failed (then `error` says why). */
  readonly metrics?: readonly object[];
  readonly error?: string;
}

/** Worker to primary, before it starts: send me the secrets every worker shares. */
export interface SecretsRequestMessage {
  readonly type: 'authz:secrets-request';
}

/**
 * Primary to worker, in answer: the key of DPoP server nonces (base64url), so that every worker accepts the
 * nonces of the others. Over the IPC channel, never in the worker's environment, which other processes of
 * the same user can read (`/proc/PID/environ`) and which its own children would inherit.
 */
export interface SecretsMessage {
  readonly type: 'authz:secrets';
  readonly dpopNonceKey: string;
}

/** Every message a worker sends. */
export type WorkerMessage = ListeningMessage | HealthMessage | MetricsResponseMessage | SecretsRequestMessage;
/** Every message the primary sends. */
export type PrimaryMessage = VerdictMessage | MetricsRequestMessage | SecretsMessage;

const WORKER_TYPES: ReadonlySet<unknown> = new Set<WorkerMessage['type']>([
  'authz:listening',
  'authz:health',
  'authz:metrics-response',
  'authz:secrets-request',
]);
const PRIMARY_TYPES: ReadonlySet<unknown> = new Set<PrimaryMessage['type']>([
  'authz:verdict',
  'authz:metrics-request',
  'authz:secrets',
]);

/** Whether an IPC message is one of ours from a worker (other modules may use the channel too). */
export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return typeof message === 'object' && message !== null && WORKER_TYPES.has((message as WorkerMessage).type);
}

/** Whether an IPC message is one of ours from the primary. */
export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return (
    typeof message === 'object' && message !== null && PRIMARY_TYPES.has((message as PrimaryMessage).type)
  );
}

/**
 * The variable through which the primary tells a worker which one it is, 1..N (a restarted worker takes the
 * number of the one it replaces). Set by the primary at fork; not a setting.
 *
 * Every worker listens on the configured address as it is, port 0 included: node:cluster shares one
 * listening socket among the workers that ask for the same address and port, so with port 0 they all get
 * the port the first one was given (asking for that port by number would be a second socket, refused with
 * EADDRINUSE).
 */
export const WORKER_NUMBER_VARIABLE = 'AUTHZ_CLUSTER_WORKER';
