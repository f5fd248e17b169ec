import type { ServingStatus } from 'grpc-health-check';

/**
 * What a server that is one worker of `authz serve --workers N` needs from the rest of the cluster
 * (implemented over IPC in cluster-worker.ts; a fake in tests). Envoy sees one service on one port, so its
 * health is that of all workers together: SERVING only when every worker is.
 */
export interface ClusterMember {
  /** This worker's number, 1..N, for its log lines. */
  readonly worker: number;
  /** Called once the server listens; the primary logs the one `started` line when every worker has. */
  listening(info: { port: number; policy: string; policyVersion: string }): void;
  /** This worker's own health (policy loaded, keys obtained, not draining), each time it changes. */
  reportHealth(status: ServingStatus): void;
  /** Whether every worker was SERVING when the primary last said; false until it has said. */
  allServing(): boolean;
  /** Calls `listener` each time the primary's verdict arrives. */
  onVerdict(listener: () => void): void;
}
