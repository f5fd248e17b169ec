import cluster from 'node:cluster';
import type { ServingStatus } from 'grpc-health-check';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { addWorkerGauges } from '../metrics/authz-metrics.js';
import {
  isWorkerMessage,
  WORKER_NUMBER_VARIABLE,
  type ListeningMessage,
  type MetricsResponseMessage,
  type PrimaryMessage,
} from './cluster-messages.js';

/** What {@link startWorkerCluster} needs. */
export interface WorkerClusterOptions {
  /** How many worker processes, 2 or more. */
  readonly workers: number;
  /** Where the workers listen (`host:port`), for the `started` line: each worker reads it from the command line. */
  readonly listen: string;
  readonly logger: Logger;
  /** After SIGTERM, how long a worker may take to exit before it is killed, in ms (its drain and grace, and some). */
  readonly stopTimeoutMs: number;
  /** Unexpected worker exits tolerated (each is restarted) within `restartWindowMs`; one more ends the cluster. */
  readonly maxRestarts?: number;
  readonly restartWindowMs?: number;
  /** How long a worker may take to answer for its metrics, in ms. */
  readonly metricsTimeoutMs?: number;
  /** The key of DPoP server nonces every worker is given, over IPC when it asks (SecretsMessage). */
  readonly dpopNonceKey: Uint8Array;
  /** Starts one worker process with these variables added to its environment (default `cluster.fork`). */
  readonly fork?: (environment: Readonly<Record<string, string>>) => ClusterWorker;
}

/**
 * The part of a `node:cluster` Worker that the primary uses: what `cluster.fork` returns, and what a test
 * fakes to play a worker's life (its messages, a broken channel, its exit) in any order it likes.
 */
export interface ClusterWorker {
  readonly process: { readonly pid?: number | undefined; kill(signal: NodeJS.Signals): boolean };
  /**
   * Sends over the IPC channel. A write that fails (the worker died a moment ago, its channel not yet seen
   * closed: EPIPE) is reported to `callback`; without one, Node emits it as the worker's 'error' event.
   */
  send(message: PrimaryMessage, callback: (error: Error | null) => void): boolean;
  isConnected(): boolean;
  isDead(): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'exit', listener: (code: number | null, signal: string | null) => void): unknown;
}

/** A running cluster, as the primary holds it. */
export interface RunningWorkerCluster {
  /** The port every worker listens on. */
  readonly port: number;
  /** Sends SIGHUP to every worker: each re-reads the policy file, as a single process does on SIGHUP. */
  reload(): void;
  /**
   * Every worker's metrics added up (prom-client's cluster aggregation: counters and histograms summed, the
   * default process metrics by their own rule), in the Prometheus text format.
   * @throws Error when a worker does not answer in time: a partial sum would look like a counter reset.
   */
  metrics(): Promise<string>;
  /**
   * Sends SIGTERM to every worker, each of which drains and closes as a single process does, and resolves
   * once all have exited. Rejects when a serving worker did not exit cleanly (a crash while draining, or
   * killed after `stopTimeoutMs`).
   */
  close(): Promise<void>;
  /** Resolves, with the reason, if the cluster gives up: workers keep dying faster than the restart budget. */
  readonly failed: Promise<Error>;
}

/** Defaults of {@link startWorkerCluster}, with units. */
export const WORKER_CLUSTER_DEFAULTS = Object.freeze({
  maxRestarts: 5, // restarts...
  restartWindowMs: 60_000, // ...per minute
  metricsTimeoutMs: 5_000, // 5 seconds, as prom-client's own cluster aggregation allows
});

/**
 * Gauges every worker holds alike (the policy in force, when it was last reloaded), which summed would read
 * N times their value: taken at their highest instead. prom-client sums every metric that does not name
 * another `aggregator`.
 */
const SHARED_GAUGES: ReadonlySet<string> = new Set([
  'authz_policy_info',
  'authz_policy_last_reload_success_timestamp_seconds',
]);

/** Metrics content type of what {@link RunningWorkerCluster.metrics} returns. */
export const CLUSTER_METRICS_CONTENT_TYPE = AggregatorRegistry.PROMETHEUS_CONTENT_TYPE;

interface Exit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** One place in the cluster: worker N, and the process currently filling it (a restart replaces it). */
interface Slot {
  readonly number: number;
  worker: ClusterWorker | undefined;
  /** Settles when that process has exited. */
  exited: Promise<Exit>;
  /** The worker's own health, as it last reported it. */
  status: ServingStatus;
  listening: boolean;
}

/**
 * Runs `authz serve --workers N` from the cluster primary: forks N workers with `node:cluster`, which all
 * listen on one port (the primary holds the socket and hands each new connection to the next worker in
 * turn), and joins them into one service.
 *
 * - Start: worker 1 first, then the others, which share its socket (port 0 included); resolves, after
 *   logging `started`, once all listen. A worker that exits before listening (a bad policy, a port in use:
 *   it says why on stderr) stops them all.
 * - Health: each worker reports its own; the primary tells every worker whether all are SERVING, and each
 *   worker's gRPC health service answers that (cluster-member.ts).
 * - A worker that dies is logged and restarted on the same port, at most `maxRestarts` times per
 *   `restartWindowMs`; beyond that, {@link RunningWorkerCluster.failed} resolves.
 *
 * @throws Error when a worker exits before listening.
 */
export async function startWorkerCluster(options: WorkerClusterOptions): Promise<RunningWorkerCluster> {
  const { logger } = options;
  const maxRestarts = options.maxRestarts ?? WORKER_CLUSTER_DEFAULTS.maxRestarts;
  const restartWindowMs = options.restartWindowMs ?? WORKER_CLUSTER_DEFAULTS.restartWindowMs;
  const metricsTimeoutMs = options.metricsTimeoutMs ?? WORKER_CLUSTER_DEFAULTS.metricsTimeoutMs;
  const dpopNonceKey = Buffer.from(options.dpopNonceKey).toString('base64url');

  const slots: Slot[] = Array.from({ length: options.workers }, (_, index) => ({
    number: index + 1,
    worker: undefined,
    exited: Promise.resolve({ code: 0, signal: null }),
    status: 'NOT_SERVING',
    listening: false,
  }));
  let port: number | undefined; // the one the first worker was given, which every other must share
  const starts = new Map<ClusterWorker, (started: ListeningMessage | Exit) => void>();
  const metricRequests = new Map<
    number,
    { worker: ClusterWorker; settle: (answer: MetricsResponseMessage) => void }
  >();
  const workerNumbers = new WeakMap<ClusterWorker, number>(); // the slot each process was forked for
  let lastMetricRequest = 0;
  let running = false; // every worker listened once: from then on, a worker that dies is restarted
  let stopping = false;
  const restarts: number[] = []; // when each restart happened (ms, monotonic)
  let giveUp!: (reason: Error) => void;
  const failed = new Promise<Error>((resolve) => (giveUp = resolve));

  /**
   * Sends `message` to a worker that may have died a moment ago: its exit, handled by onExit, follows. A
   * failed write is logged and handed to `failed`, never thrown: an unhandled 'error' event from one dying
   * worker would end the primary and every other worker with it.
   */
  const send = (worker: ClusterWorker, message: PrimaryMessage, failed?: (error: Error) => void) => {
    if (!worker.isConnected()) {
      failed?.(new Error('the worker is not connected'));
      return;
    }
    worker.send(message, (error) => {
      if (error === null) return;
      onWorkerError(worker, error);
      failed?.(error);
    });
  };
  /** A worker's channel or process failed (a write to it, a signal): its exit, if it comes, is handled apart. */
  const onWorkerError = (worker: ClusterWorker, error: Error) => {
    logger.warn(
      {
        event: 'worker_error',
        worker: workerNumbers.get(worker),
        pid: worker.process.pid,
        code: (error as NodeJS.ErrnoException).code,
      },
      `worker process: ${error.message}`,
    );
  };
  const broadcastVerdict = () => {
    const allServing = slots.every((slot) => slot.worker !== undefined && slot.status === 'SERVING');
    for (const slot of slots) {
      if (slot.worker !== undefined && slot.listening) {
        send(slot.worker, { type: 'authz:verdict', allServing });
      }
    }
  };

  const fork = (slot: Slot): ClusterWorker => {
    const worker = (options.fork ?? cluster.fork)({ [WORKER_NUMBER_VARIABLE]: String(slot.number) });
    const exited = new Promise<Exit>((resolve) =>
      worker.once('exit', (code: number | null, signal: string | null) => {
        const exit = { code, signal };
        resolve(exit);
        onExit(slot, worker, exit);
      }),
    );
    Object.assign(slot, { worker, exited, status: 'NOT_SERVING', listening: false });
    workerNumbers.set(worker, slot.number);
    worker.on('error', (error: Error) => onWorkerError(worker, error));
    worker.on('message', (message: unknown) => {
      if (!isWorkerMessage(message)) return; // prom-client's, or another module's
      if (message.type === 'authz:listening') {
        slot.listening = true;
        starts.get(worker)?.(message);
        if (running) {
          const pid = worker.process.pid;
          if (message.port !== port) {
            // Every worker listening at once on port 0 had died, and the socket went with them.
            const reason = `worker ${slot.number} was restarted on port ${message.port}, not ${port}`;
            logger.fatal(
              { event: 'worker_port_changed', worker: slot.number, pid, port: message.port },
              reason,
            );
            giveUp(new Error(reason));
            return;
          }
          logger.info({ event: 'worker_restarted', worker: slot.number, pid }, 'worker restarted');
        }
        broadcastVerdict();
      } else if (message.type === 'authz:health') {
        slot.status = message.status;
        broadcastVerdict();
      } else if (message.type === 'authz:secrets-request') {
        send(worker, { type: 'authz:secrets', dpopNonceKey });
      } else {
        metricRequests.get(message.id)?.settle(message);
      }
    });
    return worker;
  };

  /** Resolves when the worker listens; rejects, naming it, when it exits first. */
  const started = (slot: Slot, worker: ClusterWorker) =>
    new Promise<ListeningMessage>((resolve, reject) => {
      starts.set(worker, (outcome) => {
        starts.delete(worker);
        if ('type' in outcome) resolve(outcome);
        else reject(new Error(`worker ${slot.number} ${describeExit(outcome)} before listening`));
      });
    });

  function onExit(slot: Slot, worker: ClusterWorker, exit: Exit): void {
    starts.get(worker)?.(exit);
    for (const [id, request] of metricRequests) {
      if (request.worker === worker)
        request.settle({ type: 'authz:metrics-response', id, error: 'worker exited' });
    }
    if (slot.worker !== worker) return;
    Object.assign(slot, { worker: undefined, status: 'NOT_SERVING', listening: false });
    if (stopping || !running) return;
    broadcastVerdict();
    const now = performance.now();
    while (restarts.length > 0 && now - restarts[0]! > restartWindowMs) restarts.shift();
    const pid = worker.process.pid;
    if (restarts.length >= maxRestarts) {
      const reason = `worker ${slot.number} ${describeExit(exit)}, after ${restarts.length} restarts within ${restartWindowMs / 1000} s`;
      logger.fatal(
        { event: 'worker_exited', worker: slot.number, pid, ...exit, restart: false },
        `${reason}: giving up`,
      );
      giveUp(new Error(reason));
      return;
    }
    restarts.push(now);
    logger.error(
      { event: 'worker_exited', worker: slot.number, pid, ...exit, restart: true },
      `worker ${describeExit(exit)} unexpectedly; restarting it`,
    );
    fork(slot);
  }

  /** SIGTERM to every worker; resolves with their exits (SIGKILL for those still there after the timeout). */
  const stopAll = async (): Promise<{ slot: number; listened: boolean; exit: Exit }[]> => {
    stopping = true;
    const live = slots.flatMap(({ number, worker, exited, listening }) =>
      worker === undefined ? [] : [{ slot: number, worker, exited, listened: listening }],
    );
    for (const { worker } of live) worker.process.kill('SIGTERM');
    const killer = setTimeout(() => {
      for (const { worker } of live) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, options.stopTimeoutMs);
    const ended = await Promise.all(
      live.map(async ({ slot, exited, listened }) => ({ slot, listened, exit: await exited })),
    );
    clearTimeout(killer);
    return ended;
  };

  // Worker 1 first: if the policy is bad, it alone says so (on stderr), not N workers at once.
  let first: ListeningMessage;
  try {
    first = await started(slots[0]!, fork(slots[0]!));
    port = first.port;
    const others = await Promise.all(slots.slice(1).map((slot) => started(slot, fork(slot))));
    const astray = others.find((other) => other.port !== port);
    if (astray !== undefined) throw new Error(`a worker listens on port ${astray.port}, not ${port}`);
  } catch (error) {
    await stopAll();
    throw error;
  }
  running = true;
  logger.info(
    {
      event: 'started',
      listen: options.listen,
      port: first.port,
      policy: first.policy,
      policy_version: first.policyVersion,
      workers: options.workers,
      worker_pids: slots.map((slot) => slot.worker?.process.pid),
    },
    'authz server listening',
  );

  const askForMetrics = (worker: ClusterWorker) =>
    new Promise<object[]>((resolve, reject) => {
      const id = ++lastMetricRequest;
      const timer = setTimeout(
        () =>
          settle({ type: 'authz:metrics-response', id, error: `no answer within ${metricsTimeoutMs} ms` }),
        metricsTimeoutMs,
      );
      const settle = (answer: MetricsResponseMessage) => {
        clearTimeout(timer);
        metricRequests.delete(id);
        if (answer.metrics !== undefined) resolve([...answer.metrics]);
        else reject(new Error(`worker metrics: ${answer.error ?? 'no answer'}`));
      };
      metricRequests.set(id, { worker, settle });
      send(worker, { type: 'authz:metrics-request', id }, (error) =>
        settle({ type: 'authz:metrics-response', id, error: error.message }),
      );
    });

  let closing: Promise<void> | undefined;
  return {
    port: first.port,
    failed,
    reload: () => {
      // Only to workers that listen: one still starting reads the file as it is, and has no SIGHUP handler
      // yet (the signal would end it).
      for (const slot of slots) if (slot.listening) slot.worker?.process.kill('SIGHUP');
    },
    metrics: async () => {
      const serving = slots.flatMap((slot) =>
        slot.worker !== undefined && slot.listening ? [slot.worker] : [],
      );
      const perWorker = await Promise.all(serving.map(askForMetrics));
      const shared = (metric: { name?: unknown }) =>
        SHARED_GAUGES.has(metric.name as string) ? { ...metric, aggregator: 'max' } : metric;
      const registry = AggregatorRegistry.aggregate(perWorker.map((metrics) => metrics.map(shared)));
      addWorkerGauges(registry, { configured: options.workers, serving: perWorker.length });
      return registry.metrics();
    },
    close: () =>
      (closing ??= (async () => {
        logger.info({ event: 'stopping', workers: options.workers }, 'stopping the workers');
        const ended = await stopAll();
        const unclean = ended.filter(({ listened, exit }) => listened && exit.code !== 0);
        logger.info(
          { event: 'workers_stopped', workers: ended.length, unclean: unclean.map(({ slot }) => slot) },
          'every worker has exited',
        );
        if (unclean.length > 0) {
          const { slot, exit } = unclean[0]!;
          throw new Error(`worker ${slot} ${describeExit(exit)} while stopping`);
        }
      })()),
  };
}

function describeExit({ code, signal }: Exit): string {
  return signal === null ? `exited with code ${code}` : `was ended by ${signal}`;
}
