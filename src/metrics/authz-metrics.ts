import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type RegistryContentType,
} from 'prom-client';
import { boundLabelValue, LabelBudget } from './label-budget.js';

/** How a decision ended: `would_deny` is a report-only denial, for which the request was allowed. */
export type DecisionOutcome = 'allow' | 'deny' | 'would_deny';

/** What happened in an issuer's verified-token cache: a lookup answered or not, an entry dropped for room. */
export type TokenCacheEventKind = 'hit' | 'miss' | 'eviction';

/**
 * The service's Prometheus metrics, on a registry of their own. Recording never throws and never blocks:
 * it is called on the decision hot path.
 */
export interface AuthzMetrics {
  /** Holds these metrics and the default Node process metrics; serve it with `startMetricsServer`. */
  readonly registry: Registry;
  /** service: the service name or '(none)'; outcome: 'allow' | 'deny' | 'would_deny'; reason: the decision's stable code (e.g. 'allowed', 'insufficient_scope'); route: the route name or '(none)'. */
  recordDecision(input: {
    service: string;
    route: string;
    outcome: DecisionOutcome;
    reason: string;
    durationSeconds: number;
  }): void;
  /** One fetch of an issuer's key set; `trigger` says why it was fetched (e.g. 'initial', 'unknown_key'). */
  recordKeySetFetch(input: { issuer: string; outcome: 'ok' | 'error'; trigger: string }): void;
  /** One policy reload attempt that read a changed file; `ok` also stamps the last-success time. */
  recordPolicyReload(result: 'ok' | 'error'): void;
  /** The policy loaded at start-up: a success like a reload, so the last-success time is never 0. */
  recordInitialPolicyLoad(): void;
  /** Whether the policy file on disk is the policy in force (false while a refused version sits there). */
  setPolicyFileInForce(inForce: boolean): void;
  /**
   * A policy directory's files (docs/policy.md, "A policy directory"): each file by its name in the
   * directory, 1 when what is on disk is in force, 0 when it is refused or not admitted. Replaces the
   * previous series, so a removed file's series goes; at most 256 files are read, so the series are bounded.
   */
  setPolicyDirectoryFiles?(
    files: readonly {
      readonly name: string;
      readonly owner: string | undefined;
      readonly inForce: boolean;
    }[],
  ): void;
  /**
   * The findings of the policy in force (`policyFindings`), counted by code and level; accepted ones are
   * left out. Replaces the previous counts.
   */
  setPolicyFindings(findings: Iterable<{ code: string; level: string; accepted?: unknown }>): void;
  /** Exposes the policy in force as an info gauge (value 1) labelled by version and source; replaces the previous one. */
  setPolicyInfo(input: { version: string; source: string }): void;
  /** One hit, miss or eviction in an issuer's verified-token cache. Called on the hot path. */
  recordTokenCacheEvent(issuer: string, event: TokenCacheEventKind): void;
  /**
   * Where the entries gauge reads how many tokens each issuer's cache holds, at every scrape (the caches
   * change with each policy reload, so the gauge asks rather than being told). Replaces any earlier reader.
   */
  readTokenCacheEntriesFrom(read: () => Iterable<{ issuer: string; entries: number }>): void;
  /** A key left out of a fetched set (reported once per distinct set); `reason` is a `KeyRejectionReason`. */
  recordKeyRejected(issuer: string, reason: string): void;
  /** Where the usable-keys gauge reads, at every scrape, whether each issuer's keys may be used. */
  readKeyUsabilityFrom(read: () => Iterable<{ issuer: string; usable: boolean }>): void;
  /** A Check that failed inside (answered with a gRPC error, 503 at Envoy); `kind` is a bounded code. */
  recordCheckFault(kind: string): void;
  /** Where the DPoP replay-cache gauge reads, at every scrape, how many proof `jti` values are remembered. */
  readDpopReplayEntriesFrom(read: () => number): void;
  /** A DPoP proof the shared replay store could not answer for (`cause`: a `ReplayStoreFault`). Hot path. */
  recordReplayStoreFault(cause: string): void;
  /** Where the replay-store gauge reads, at every scrape, whether the store in force can be asked. */
  readReplayStoreUpFrom(read: () => boolean): void;
  /** Where the in-flight gauge reads, at every scrape, how many Checks have been received and not yet answered. */
  readChecksInFlightFrom(read: () => number): void;
  /**
   * Where the dropped-lines counter reads, at every scrape, how many log lines this process has dropped so far
   * (its log destination's count, which only grows: `BufferedDestination.droppedLines`).
   */
  readLogLinesDroppedFrom(read: () => number): void;
  /**
   * Spans that will never reach the collector (tracing on): `queue_full` (more awaiting export than
   * OTEL_BSP_MAX_QUEUE_SIZE: the collector is away or slow) or `export_failed`. Off the request path.
   */
  recordTraceSpansDropped(cause: 'queue_full' | 'export_failed', spans: number): void;
}

/** What {@link createAuthzMetrics} may be given; every field has a production default. */
export interface AuthzMetricsOptions {
  /** Distinct label combinations each metric keeps before folding into `(other)`. */
  readonly maxSeriesPerMetric?: number;
  /** Wall clock in milliseconds since the epoch, for the last-reload timestamp. */
  readonly now?: () => number;
}

/** The default cap on label combinations per metric: far above any sane policy, far below a memory problem. */
export const DEFAULT_MAX_SERIES_PER_METRIC = 1000;

/**
 * Decision latency buckets, in seconds. A decision is a few hash lookups and, with a cached key, one
 * signature check: tens to hundreds of microseconds. The upper buckets catch the slow path (a key set fetch
 * on an unknown `kid`) up to one second, beyond which Envoy's own ext_authz timeout is the better signal.
 */
export const DECISION_DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

const DECISION_OUTCOMES: readonly DecisionOutcome[] = ['allow', 'deny', 'would_deny'];
const RELOAD_RESULTS = ['ok', 'error'] as const;

/**
 * Creates the service's metrics on a new registry, with the default Node process metrics (CPU, memory,
 * event loop, GC) registered on it too. A registry per call, never prom-client's global one, so that two
 * servers in one process (the tests, the demo) do not count into each other and nothing registers twice.
 *
 * The default metrics start an event-loop delay monitor and a GC observer that live as long as the
 * process: create one instance per server, not per request.
 *
 * @throws RangeError when `maxSeriesPerMetric` is not a positive integer.
 */
export function createAuthzMetrics(options: AuthzMetricsOptions = {}): AuthzMetrics {
  const maxSeries = options.maxSeriesPerMetric ?? DEFAULT_MAX_SERIES_PER_METRIC;
  const now = options.now ?? Date.now;
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const decisions = new Counter({
    name: 'authz_decisions_total',
    help: 'Authorization decisions, by service, route name, outcome and reason code.',
    labelNames: ['service', 'route', 'outcome', 'reason'] as const,
    registers,
  });
  // The route is the most open-ended label, so it goes first, then the service (names from the policy);
  // the reason only if even (other) has run out.
  const decisionLabels = new LabelBudget(
    ['service', 'route', 'outcome', 'reason'],
    ['route', 'service', 'reason'],
    maxSeries,
  );

  const decisionDuration = new Histogram({
    name: 'authz_decision_duration_seconds',
    help: 'Time to reach an authorization decision, in seconds, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [...DECISION_DURATION_BUCKETS],
    registers,
  });

  const keySetFetches = new Counter({
    name: 'authz_jwks_fetches_total',
    help: 'Fetches of an issuer JSON Web Key Set, by issuer, outcome and what triggered the fetch.',
    labelNames: ['issuer', 'outcome', 'trigger'] as const,
    registers,
  });
  const keySetFetchLabels = new LabelBudget(
    ['issuer', 'outcome', 'trigger'],
    ['issuer', 'trigger'],
    maxSeries,
  );

  const policyReloads = new Counter({
    name: 'authz_policy_reloads_total',
    help: 'Policy reload attempts of a changed file, by result.',
    labelNames: ['result'] as const,
    registers,
  });

  const policyInfo = new Gauge({
    name: 'authz_policy_info',
    help: 'The policy in force: always 1, labelled by its content version and source file.',
    labelNames: ['version', 'source'] as const,
    registers,
  });

  const lastReloadSuccess = new Gauge({
    name: 'authz_policy_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last successful policy load or reload, in seconds (the start-up load counts).',
    registers,
  });

  const fileInForce = new Gauge({
    name: 'authz_policy_file_in_force',
    help: 'Whether the policy file on disk is the policy in force (1), or a refused version sits there (0).',
    registers,
    aggregator: 'min', // across --workers: 0 if any worker refused the file
  });
  fileInForce.set(1);

  const directoryFileInForce = new Gauge({
    name: 'authz_policy_directory_file_in_force',
    help: "A policy directory's files: 1 while the file on disk is in force, 0 while it is refused or not admitted (its last good version, if any, stays in force).",
    labelNames: ['file', 'owner'] as const,
    registers,
    aggregator: 'min',
  });

  const policyFindingsGauge = new Gauge({
    name: 'authz_policy_findings',
    help: 'Findings of the policy in force (as authz check-policy reports them), by code and level; accepted ones left out.',
    labelNames: ['code', 'level'] as const,
    registers,
    aggregator: 'max', // every worker holds the same policy: not summed
  });

  const tokenCacheEvents = {
    hit: new Counter({
      name: 'authz_token_cache_hits_total',
      help: 'Tokens answered from their issuer verified-token cache (signature and claims not verified again).',
      labelNames: ['issuer'] as const,
      registers,
    }),
    miss: new Counter({
      name: 'authz_token_cache_misses_total',
      help: 'Tokens of an issuer with a verified-token cache that were not found in it and were verified in full.',
      labelNames: ['issuer'] as const,
      registers,
    }),
    eviction: new Counter({
      name: 'authz_token_cache_evictions_total',
      help: 'Verified tokens dropped from a full cache to make room (least recently used first).',
      labelNames: ['issuer'] as const,
      registers,
    }),
  };
  const tokenCacheLabels = {
    hit: new LabelBudget(['issuer'], ['issuer'], maxSeries),
    miss: new LabelBudget(['issuer'], ['issuer'], maxSeries),
    eviction: new LabelBudget(['issuer'], ['issuer'], maxSeries),
  };
  // Counter children by event and issuer, so that a hit does not go through the label budget again.
  // Bounded like the series themselves: past the budget, issuers take the slow way.
  const tokenCacheChildren = {
    hit: new Map<string, { inc(): void }>(),
    miss: new Map<string, { inc(): void }>(),
    eviction: new Map<string, { inc(): void }>(),
  };
  let readTokenCacheEntries: () => Iterable<{ issuer: string; entries: number }> = () => [];
  new Gauge({
    name: 'authz_token_cache_entries',
    help: 'Tokens held in each issuer verified-token cache, read at scrape time.',
    labelNames: ['issuer'] as const,
    registers,
    collect() {
      this.reset();
      for (const { issuer, entries } of readTokenCacheEntries()) {
        this.set({ issuer: boundLabelValue(issuer) }, entries);
      }
    },
  });

  let readDpopReplayEntries: () => number = () => 0;
  new Gauge({
    name: 'authz_dpop_replay_cache_entries',
    help: 'DPoP proof jti values remembered to refuse replays (per process; bounded by dpop.replay_cache_size), read at scrape time.',
    registers,
    collect() {
      this.set(readDpopReplayEntries());
    },
  });

  const replayStoreFaults = new Counter({
    name: 'authz_dpop_replay_store_faults_total',
    help: 'DPoP proofs the shared replay store (dpop.replay_store: redis) could not answer for, by cause (disconnected, timeout, busy, error, settings): refused with 503, or checked locally with fallback: local.',
    labelNames: ['cause'] as const,
    registers,
  });
  let readReplayStoreUp: () => boolean = () => true;
  new Gauge({
    name: 'authz_dpop_replay_store_up',
    help: 'Whether the DPoP replay store in force can be asked: 1 for the memory store; for Redis, 1 while connected and answering (read at scrape time).',
    registers,
    aggregator: 'min', // across --workers: 0 if any worker cannot reach it
    collect() {
      this.set(readReplayStoreUp() ? 1 : 0);
    },
  });

  let readChecksInFlight: () => number = () => 0;
  new Gauge({
    name: 'authz_checks_in_flight',
    help: 'Checks received and not yet answered: being decided, or waiting for an issuer key set (read at scrape time).',
    registers,
    collect() {
      this.set(readChecksInFlight());
    },
  });

  // The log destination is made before these metrics and counts its drops itself (a drop happens inside a
  // write, where nothing else should be done): read at scrape time, as a counter, so that the cluster primary
  // sums it over the workers like the other counters.
  let readLogLinesDropped: () => number = () => 0;
  let logLinesDroppedSeen = 0;
  new Counter({
    name: 'authz_log_lines_dropped_total',
    help: 'Log lines dropped because the output (standard output) did not take them fast enough and the log buffer was full.',
    registers,
    collect() {
      const dropped = readLogLinesDropped();
      if (dropped <= logLinesDroppedSeen) return;
      this.inc(dropped - logLinesDroppedSeen);
      logLinesDroppedSeen = dropped;
    },
  });

  const keysRejected = new Counter({
    name: 'authz_jwks_keys_rejected_total',
    help: 'Keys left out of a fetched issuer key set (not importable or unsuitable), once per distinct set, by issuer and reason.',
    labelNames: ['issuer', 'reason'] as const,
    registers,
  });
  const keysRejectedLabels = new LabelBudget(['issuer', 'reason'], ['issuer'], maxSeries);
  let readKeyUsability: () => Iterable<{ issuer: string; usable: boolean }> = () => [];
  new Gauge({
    name: 'authz_jwks_keys_usable',
    help: "Whether an issuer's keys may be used (1) or none are held or they are past jwks_max_stale (0), read at scrape time.",
    labelNames: ['issuer'] as const,
    registers,
    aggregator: 'min', // across --workers: 0 if any worker has no usable keys
    collect() {
      this.reset();
      for (const { issuer, usable } of readKeyUsability()) {
        this.set({ issuer: boundLabelValue(issuer) }, usable ? 1 : 0);
      }
    },
  });
  const checkFaults = new Counter({
    name: 'authz_check_faults_total',
    help: 'Check calls that failed inside the service (answered with a gRPC error, 503 at Envoy), by kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  const checkFaultLabels = new LabelBudget(['kind'], ['kind'], maxSeries);

  const traceSpansDropped = new Counter({
    name: 'authz_trace_spans_dropped_total',
    help: 'Trace spans that will never reach the collector (tracing on), by cause: queue_full (more awaiting export than OTEL_BSP_MAX_QUEUE_SIZE) or export_failed.',
    labelNames: ['cause'] as const,
    registers,
  });

  // Series for closed label sets exist from the start, so that rate() and absent-series alerts see a 0
  // rather than nothing before the first event.
  for (const outcome of DECISION_OUTCOMES) decisionDuration.zero({ outcome });
  for (const result of RELOAD_RESULTS) policyReloads.inc({ result }, 0);
  for (const cause of ['queue_full', 'export_failed'] as const) traceSpansDropped.inc({ cause }, 0);

  return {
    registry,

    recordDecision({ service, route, outcome, reason, durationSeconds }) {
      decisions.inc(decisionLabels.admit({ service, route, outcome, reason }));
      // A NaN or infinite observation would poison the histogram's sum for the life of the process;
      // a negative one can only be a clock step, and counts as instant.
      if (Number.isFinite(durationSeconds)) {
        decisionDuration.observe({ outcome }, Math.max(0, durationSeconds));
      }
    },

    recordKeySetFetch({ issuer, outcome, trigger }) {
      keySetFetches.inc(keySetFetchLabels.admit({ issuer, outcome, trigger }));
    },

    recordPolicyReload(result) {
      policyReloads.inc({ result });
      if (result === 'ok') lastReloadSuccess.set(now() / 1000);
    },

    recordInitialPolicyLoad() {
      lastReloadSuccess.set(now() / 1000);
    },

    setPolicyFileInForce(inForce) {
      fileInForce.set(inForce ? 1 : 0);
    },

    setPolicyDirectoryFiles(files) {
      directoryFileInForce.reset();
      for (const file of files) {
        directoryFileInForce.set(
          { file: boundLabelValue(file.name), owner: boundLabelValue(file.owner ?? '(unknown)') },
          file.inForce ? 1 : 0,
        );
      }
    },

    setPolicyFindings(findings) {
      const counts = new Map<string, { code: string; level: string; count: number }>();
      for (const { code, level, accepted } of findings) {
        if (accepted !== undefined) continue;
        const labels = { code: boundLabelValue(code), level: boundLabelValue(level) };
        const key = `${labels.code}\n${labels.level}`;
        const entry = counts.get(key) ?? { ...labels, count: 0 };
        entry.count += 1;
        counts.set(key, entry);
      }
      // Reset and set in one synchronous step, as for the policy info.
      policyFindingsGauge.reset();
      for (const { code, level, count } of counts.values()) policyFindingsGauge.set({ code, level }, count);
    },

    setPolicyInfo({ version, source }) {
      // Reset and set in one synchronous step: a scrape sees the old policy or the new one, never both
      // and never neither.
      policyInfo.reset();
      policyInfo.set({ version: boundLabelValue(version), source: boundLabelValue(source) }, 1);
    },

    recordTokenCacheEvent(issuer, event) {
      const children = tokenCacheChildren[event];
      let child = children.get(issuer);
      if (child === undefined) {
        child = tokenCacheEvents[event].labels(tokenCacheLabels[event].admit({ issuer }));
        if (children.size < maxSeries) children.set(issuer, child);
      }
      child.inc();
    },

    readTokenCacheEntriesFrom(read) {
      readTokenCacheEntries = read;
    },

    readDpopReplayEntriesFrom(read) {
      readDpopReplayEntries = read;
    },

    recordReplayStoreFault(cause) {
      replayStoreFaults.inc({ cause });
    },

    readReplayStoreUpFrom(read) {
      readReplayStoreUp = read;
    },

    readChecksInFlightFrom(read) {
      readChecksInFlight = read;
    },

    readLogLinesDroppedFrom(read) {
      readLogLinesDropped = read;
    },

    recordKeyRejected(issuer, reason) {
      keysRejected.inc(keysRejectedLabels.admit({ issuer, reason }));
    },

    readKeyUsabilityFrom(read) {
      readKeyUsability = read;
    },

    recordCheckFault(kind) {
      checkFaults.inc(checkFaultLabels.admit({ kind }));
    },

    recordTraceSpansDropped(cause, spans) {
      traceSpansDropped.inc({ cause }, spans);
    },
  };
}

/** The workers of `authz serve --workers N` at one scrape of the primary: {@link addWorkerGauges}. */
export interface WorkerCounts {
  /** Worker processes asked for (`--workers N`). */
  readonly configured: number;
  /** Worker processes that listen now (a worker being restarted, or still starting, does not). */
  readonly serving: number;
}

/**
 * Adds the worker gauges to the registry the cluster primary serves (the workers' metrics added up), so that
 * a missing worker shows as `authz_workers_serving < authz_workers`: the primary's scrape still succeeds
 * while a worker is dead or being restarted, and each worker's own metrics cannot say that it is missing.
 * A single-process server (no `--workers`) has neither: Prometheus's `up` says whether it is there.
 */
export function addWorkerGauges(registry: Registry<RegistryContentType>, counts: WorkerCounts): void {
  const registers = [registry as Registry];
  new Gauge({
    name: 'authz_workers',
    help: 'Worker processes asked for (authz serve --workers N); served by the cluster primary only.',
    registers,
  }).set(counts.configured);
  new Gauge({
    name: 'authz_workers_serving',
    help: 'Worker processes listening at this scrape (one dead or being restarted is not); served by the cluster primary only.',
    registers,
  }).set(counts.serving);
}
