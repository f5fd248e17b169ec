import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { PrimaryMessage, WorkerMessage } from '../../../src/server/cluster-messages.js';
import {
  startWorkerCluster,
  type ClusterWorker,
  type RunningWorkerCluster,
} from '../../../src/server/worker-cluster.js';
import { memoryLogger, type MemoryLogger } from '../../kit/memory-logger.js';

/*
 * The primary of `authz serve --workers N` with its workers played by fakes, so that a worker's life (its
 * messages, a channel that breaks, its exit) happens in exactly the order a test names. The real processes
 * are in test/integration/serve-workers.test.ts, where such orders happen only by chance.
 */

const PORT = 40_000;
const NONCE_KEY = Buffer.alloc(32, 9);

/**
 * A worker as the primary sees it. Its `send` behaves as Node's ChildProcess.send (node:child_process):
 * once the channel has broken, the write fails asynchronously, to the callback when one is given, else as
 * an 'error' event, which ends the process when nobody listens.
 */
class FakeWorker extends EventEmitter implements ClusterWorker {
  readonly sent: PrimaryMessage[] = [];
  readonly signals: NodeJS.Signals[] = [];
  private connected = true;
  private broken = false;
  private dead = false;

  constructor(readonly process: { readonly pid: number; kill(signal: NodeJS.Signals): boolean }) {
    super();
  }

  send(message: PrimaryMessage, callback?: (error: Error | null) => void): boolean {
    if (this.broken) {
      const error = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' });
      if (callback === undefined) queueMicrotask(() => this.emit('error', error));
      else queueMicrotask(() => callback(error));
      return false;
    }
    this.sent.push(message);
    queueMicrotask(() => callback?.(null));
    return true;
  }

  isConnected(): boolean {
    return this.connected;
  }

  isDead(): boolean {
    return this.dead;
  }

  /** The worker says something to the primary. */
  say(message: WorkerMessage): void {
    this.emit('message', message);
  }

  listening(port = PORT): void {
    this.say({ type: 'authz:listening', port, policy: 'policy.yaml', policyVersion: 'v1' });
  }

  /** The process died; its channel is not yet seen closed, so `isConnected()` still says true. */
  breakChannel(): void {
    this.broken = true;
  }

  /** The process ends: killed by `signal`, or exiting with `code` (as a worker does on SIGTERM, after draining). */
  die(end: { code: number } | { signal: NodeJS.Signals } = { signal: 'SIGKILL' }): void {
    this.broken = true;
    this.connected = false;
    this.dead = true;
    if ('code' in end) this.emit('exit', end.code, null);
    else this.emit('exit', null, end.signal);
  }
}

/** A primary over fake workers, each forked on demand; `forked(n)` waits for the n-th fork (1-based). */
function fakeCluster(workers = 2) {
  const log: MemoryLogger = memoryLogger();
  const forks: FakeWorker[] = [];
  const environments: Readonly<Record<string, string>>[] = [];
  const waiting = new Map<number, (worker: FakeWorker) => void>();
  let pids = 100;
  const fork = () => {
    const worker: FakeWorker = new FakeWorker({
      pid: ++pids,
      kill: (signal) => {
        worker.signals.push(signal);
        if (signal === 'SIGTERM') queueMicrotask(() => worker.die({ code: 0 }));
        if (signal === 'SIGKILL') queueMicrotask(() => worker.die({ signal }));
        return true;
      },
    });
    forks.push(worker);
    waiting.get(forks.length)?.(worker);
    return worker;
  };
  const forked = (n: number) =>
    forks[n - 1] !== undefined
      ? Promise.resolve(forks[n - 1]!)
      : new Promise<FakeWorker>((resolve) => waiting.set(n, resolve));
  const started = startWorkerCluster({
    workers,
    listen: '127.0.0.1:0',
    logger: log.logger,
    stopTimeoutMs: 1000,
    metricsTimeoutMs: 60_000, // far beyond any test: an answer that comes must come from the failure itself
    dpopNonceKey: NONCE_KEY,
    fork: (environment: Readonly<Record<string, string>>) => {
      environments.push(environment);
      return fork();
    },
  });
  const events = () => log.records().map((record) => record['event']);
  return { log, forks, forked, started, events, environments };
}

/** Starts a fake cluster of two and has both workers listen. */
async function runningPair() {
  const fake = fakeCluster(2);
  (await fake.forked(1)).listening();
  (await fake.forked(2)).listening();
  const cluster: RunningWorkerCluster = await fake.started;
  return { ...fake, cluster };
}

describe('the cluster primary, with workers that die at awkward moments', () => {
  it('tells every worker the service is SERVING only while every worker reports SERVING', async () => {
    const { forks, cluster } = await runningPair();
    const [first, second] = forks as [FakeWorker, FakeWorker];
    const verdicts = (worker: FakeWorker) =>
      worker.sent.filter((message) => (message as { type?: string }).type === 'authz:verdict');
    const settle = () => new Promise((resolve) => setImmediate(resolve));

    second.say({ type: 'authz:health', status: 'SERVING' }); // worker 1 is still starting
    await settle();
    expect(verdicts(first).at(-1)).toEqual({ type: 'authz:verdict', allServing: false });
    expect(verdicts(second).at(-1)).toEqual({ type: 'authz:verdict', allServing: false });

    first.say({ type: 'authz:health', status: 'SERVING' });
    await settle();
    expect(verdicts(first).at(-1)).toEqual({ type: 'authz:verdict', allServing: true });
    expect(verdicts(second).at(-1)).toEqual({ type: 'authz:verdict', allServing: true });

    first.say({ type: 'authz:health', status: 'NOT_SERVING' }); // e.g. draining
    await settle();
    expect(verdicts(second).at(-1)).toEqual({ type: 'authz:verdict', allServing: false });
    await cluster.close();
  });

  it('survives a message to a worker that has just died (EPIPE), and restarts that worker', async () => {
    const { forks, forked, log, events, cluster } = await runningPair();
    const [first, second] = forks as [FakeWorker, FakeWorker];

    // Worker 1 is killed; before its exit is seen, worker 2 reports SERVING and the primary tells every
    // worker the new verdict: the write to worker 1 fails.
    first.breakChannel();
    second.say({ type: 'authz:health', status: 'SERVING' });
    await new Promise((resolve) => setImmediate(resolve));
    first.die();

    const replacement = await forked(3);
    replacement.listening();

    expect(events()).toEqual(['started', 'worker_error', 'worker_exited', 'worker_restarted']);
    const records = log.records();
    expect(records[1]).toMatchObject({ level: 40, worker: 1, pid: first.process.pid, code: 'EPIPE' });
    expect(records[3]).toMatchObject({ worker: 1, pid: replacement.process.pid });
    expect(second.sent).toContainEqual({ type: 'authz:verdict', allServing: false });
    await cluster.close();
  });

  it("logs an 'error' event of a worker process (a failed write or signal) and carries on", async () => {
    const { forks, events, cluster } = await runningPair();

    forks[0]!.emit('error', Object.assign(new Error('kill EPERM'), { code: 'EPERM' }));

    expect(events()).toEqual(['started', 'worker_error']);
    await cluster.close();
    expect(events().at(-1)).toBe('workers_stopped');
  });

  it('fails a metrics request at once when the write to a worker fails, instead of waiting out the timeout', async () => {
    const { forks, cluster } = await runningPair();
    forks[1]!.breakChannel();

    await expect(cluster.metrics()).rejects.toThrow('worker metrics: write EPIPE');
    await cluster.close();
  });
});

/** Has each worker answer every metrics request it was sent (and has not answered yet) with no metrics. */
function answerMetricsRequests(workers: readonly FakeWorker[]): void {
  for (const worker of workers) {
    for (const message of worker.sent.splice(0)) {
      if (message.type === 'authz:metrics-request')
        worker.say({ type: 'authz:metrics-response', id: message.id, metrics: [] });
    }
  }
}

/** A scrape of the primary, its workers answering. */
async function scrape(cluster: RunningWorkerCluster, workers: readonly FakeWorker[]): Promise<string> {
  const text = cluster.metrics();
  await new Promise((resolve) => setImmediate(resolve));
  answerMetricsRequests(workers);
  return text;
}

describe('the cluster primary, counting its workers for the scrape', () => {
  it('serves authz_workers (asked for) and authz_workers_serving, which drops while a worker is restarted', async () => {
    const { forks, forked, cluster } = await runningPair();
    const [first, second] = forks as [FakeWorker, FakeWorker];

    const both = await scrape(cluster, [first, second]);
    expect(both).toMatch(/^authz_workers 2$/m);
    expect(both).toMatch(/^authz_workers_serving 2$/m);

    first.die();
    const replacement = await forked(3);
    const one = await scrape(cluster, [second, replacement]);
    expect(one).toMatch(/^authz_workers 2$/m);
    expect(one).toMatch(/^authz_workers_serving 1$/m);

    replacement.listening();
    expect(await scrape(cluster, [second, replacement])).toMatch(/^authz_workers_serving 2$/m);
    await cluster.close();
  });
});

describe('the cluster primary, handing its workers their secrets', () => {
  it('answers a worker that asks with the DPoP nonce key, over IPC; no worker gets it in its environment', async () => {
    const { forks, environments, cluster } = await runningPair();
    forks[0]!.say({ type: 'authz:secrets-request' });
    await new Promise((resolve) => setImmediate(resolve));

    expect(forks[0]!.sent).toContainEqual({
      type: 'authz:secrets',
      dpopNonceKey: NONCE_KEY.toString('base64url'),
    });
    expect(forks[1]!.sent.map((message) => message.type)).not.toContain('authz:secrets');
    // Each worker's environment holds its number, nothing else of the primary's making.
    expect(environments).toEqual([{ AUTHZ_CLUSTER_WORKER: '1' }, { AUTHZ_CLUSTER_WORKER: '2' }]);
    expect(JSON.stringify(environments)).not.toContain(NONCE_KEY.toString('base64url'));
    await cluster.close();
  });
});
