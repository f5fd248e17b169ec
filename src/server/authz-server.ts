import {
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Logger } from 'pino';
import {
  waitWithTimer,
  type KeyRejectionEvent,
  type KeySetFetchEvent,
  type KeySetUsabilityEvent,
} from '../authn/issuer-keys.js';
import { createKeyRing, type KeyRing } from '../authn/key-ring.js';
import { fetchKeySetOverHttp, KEY_SET_LIMITS, type FetchKeySet } from '../authn/read-key-set.js';
import { DpopNonces } from '../authn/dpop-nonces.js';
import { DpopProofKeys } from '../authn/dpop-proof-keys.js';
import { bearerTokenVerifier, type PossessionState } from '../authn/verify-access-token.js';
import type { Decision } from '../authz/decision.js';
import { preparedOutcomes } from '../authz/prepared-outcomes.js';
import type { AuthzMetrics } from '../metrics/authz-metrics.js';
import { loadAuthorizationService } from '../envoy/authorization-proto.js';
import type { CheckRequestMessage, CheckResponseMessage } from '../envoy/check-messages.js';
import { checkFaultKind } from '../envoy/check-fault-kind.js';
import { createCheckHandler, type ActivePolicy } from '../envoy/check-handler.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { ClusterMember } from './cluster-member.js';
import { ReplayStores } from './replay-stores.js';
import { PolicyError } from '../policy/policy-error.js';
import { reloadBlockingFindings } from '../policy/policy-findings.js';
import { PolicyWatcher, type ReloadResult } from '../policy/policy-watcher.js';
import type { CheckTracing, TraceFieldReader } from '../tracing/check-tracing.js';

/** The gRPC service name health is reported for (besides the overall "" service). */
export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';

/** The verified-token cache and key-set hooks, which a server's metrics may leave out. */
type TokenCacheMetrics =
  | 'recordTokenCacheEvent'
  | 'readTokenCacheEntriesFrom'
  | 'recordKeyRejected'
  | 'readKeyUsabilityFrom'
  | 'recordCheckFault'
  | 'readDpopReplayEntriesFrom'
  | 'recordReplayStoreFault'
  | 'readReplayStoreUpFrom'
  | 'readChecksInFlightFrom';

/** The policy file's state beyond reloads, which a server's metrics may leave out too. */
type PolicyStateMetrics = 'recordInitialPolicyLoad' | 'setPolicyFileInForce' | 'setPolicyFindings';

/** What the process reports besides the server: its log destination and tracing, which `authz serve` wires itself. */
type ProcessMetrics = 'readLogLinesDroppedFrom' | 'recordTraceSpansDropped';

/** What the server reports to metrics (the registry itself is the metrics server's business). */
export type ServerMetrics = Omit<
  AuthzMetrics,
  'registry' | ProcessMetrics | TokenCacheMetrics | PolicyStateMetrics
> &
  Partial<Pick<AuthzMetrics, TokenCacheMetrics | PolicyStateMetrics>>;

export interface AuthzServerOptions {
  readonly policyFile: string;
  /** `host:port`; port 0 picks a free port. */
  readonly listen: string;
  readonly logger: Logger;
  readonly fetchKeySet?: FetchKeySet;
  readonly now?: () => number;
  readonly metrics?: ServerMetrics;
  /** Share of allow decisions logged, 0..1 (default 1); denials are always logged. */
  readonly logAllowedSample?: number;
  /** Watch the policy file and reload on change (default true). */
  readonly watchPolicy?: boolean;
  /**
   * When this server is one worker of `authz serve --workers N`: health is SERVING only when every worker
   * is, and the start is logged as `worker_started` (the primary logs the one `started` line).
   */
  readonly cluster?: ClusterMember;
  /**
   * The key of DPoP server nonces (at least 32 bytes; the same in every worker and replica that should accept
   * each other's nonces); default: a random key.
   */
  readonly dpopNonceKey?: Uint8Array;
  /**
   * Start on a policy with error-level findings not accepted (`serve --allow-policy-errors`). By default
   * such a policy is refused at start as the reload guard refuses it on reload (unless its `reload_guard`
   * is `off`): otherwise a refused file left on disk would be served by the next pod or worker that starts.
   */
  readonly allowPolicyErrors?: boolean;
  /**
   * Tracing of Checks (`authz serve` starts it from the OpenTelemetry variables): a span per Check, joined
   * to the caller's trace, with child spans for key-set fetches, token verification and DPoP proofs.
   */
  readonly tracing?: CheckTracing;
}

export interface RunningAuthzServer {
  /** The port actually bound. */
  readonly port: number;
  /** Re-reads the policy file now (SIGHUP). */
  reload(): Promise<ReloadResult>;
  /**
   * Graceful stop: health turns NOT_SERVING at once; calls keep being served for `drainMs` so that
   * balancers watching health can move away; then new calls are refused while calls in flight finish,
   * for at most `graceMs`; then the server closes.
   */
  close(options?: { drainMs?: number; graceMs?: number }): Promise<void>;
}

/** Server limits: a CheckRequest carries headers only (no body is forwarded), so 1 MiB is ample. */
const SERVER_OPTIONS = {
  'grpc.max_receive_message_length': 1024 * 1024, // 1 MiB
  'grpc.max_send_message_length': 64 * 1024, // 64 KiB
  // No channelz (gRPC's introspection service, which this server does not offer): grpc-js otherwise keeps
  // per-call counters and traces for it on every Check.
  'grpc.enable_channelz': 0,
};
/** How often health is re-evaluated and missing issuer keys are retried (fetches keep their own cooldowns). */
const HEALTH_INTERVAL_MS = 1000; // 1 second
/**
 * The longest start-up waits for the first fetch of every issuer before health goes SERVING: a read ends
 * within its own budget (`KEY_SET_LIMITS.timeoutMs`, discovery included); the second more is a guard.
 */
const STARTUP_KEYS_WAIT_MS = KEY_SET_LIMITS.timeoutMs + 1000; // 6 seconds

/**
 * Loads the policy, then serves ext_authz and gRPC health on one port, and keeps the policy current
 * (file watching; `reload()` for SIGHUP). Health is SERVING once a policy is loaded and the first fetch of
 * every issuer's keys has ended (or `STARTUP_KEYS_WAIT_MS` has passed), and NOT_SERVING from the moment
 * draining starts. It never depends on an identity provider after start-up: an issuer without usable keys
 * answers its own tokens 503 `temporarily_unavailable` (keys_unavailable), and other issuers' traffic is
 * served; a pod restarted or taken out of a balancer would not bring that provider back.
 *
 * @throws PolicyError when the initial policy cannot be used; Error when the address cannot be bound.
 */
export async function startAuthzServer(options: AuthzServerOptions): Promise<RunningAuthzServer> {
  const { logger, metrics } = options;
  const now = options.now ?? Date.now;
  const keyRingDependencies = {
    fetchKeySet: options.fetchKeySet ?? fetchKeySetOverHttp,
    now,
    onFetch: (event: KeySetFetchEvent) => {
      metrics?.recordKeySetFetch({ issuer: event.issuer, outcome: event.outcome, trigger: event.trigger });
      if (event.outcome === 'ok') logger.info({ event: 'jwks_fetch', ...event }, 'issuer keys fetched');
      else logger.warn({ event: 'jwks_fetch', ...event }, 'issuer keys could not be fetched');
    },
    // Said once per change of state, not per request.
    onUsability: (event: KeySetUsabilityEvent) => {
      const fields = {
        event: 'jwks_usability',
        issuer: event.issuer,
        state: event.state,
        ...(event.reason === undefined ? {} : { reason: event.reason }),
        ...(event.cause === undefined ? {} : { cause: event.cause }),
        ...(event.status === undefined ? {} : { status: event.status }),
        fetched_at: event.fetchedAtMs === 0 ? null : new Date(event.fetchedAtMs).toISOString(),
      };
      if (event.state === 'usable') logger.info(fields, 'issuer keys usable again');
      else if (event.reason === 'stale') {
        logger.error(
          fields,
          "issuer keys dropped: no refresh succeeded within jwks_max_stale; the issuer's tokens are answered 503",
        );
      } else logger.error(fields, "issuer keys could not be obtained; the issuer's tokens are answered 503");
    },
    // Once per distinct key set fetched.
    onKeyRejected: (event: KeyRejectionEvent) => {
      metrics?.recordKeyRejected?.(event.issuer, event.reason);
      logger.warn(
        { event: 'jwks_key_rejected', issuer: event.issuer, kid: event.kid ?? null, reason: event.reason },
        'a key of the issuer key set cannot be used and is left out',
      );
    },
    ...(metrics?.recordTokenCacheEvent === undefined
      ? {}
      : { onTokenCacheEvent: metrics.recordTokenCacheEvent.bind(metrics) }),
    ...(options.tracing === undefined ? {} : { steps: options.tracing.steps }),
  };
  // Outlives policy versions: a reload must not forget which proofs were seen, nor invalidate nonces.
  const replayStores = new ReplayStores({
    // Said once per change of state (and at most every few seconds for a flapping store), not per request.
    onState: (event) => {
      const fields = { event: 'replay_store', store: 'redis', ...event };
      if (event.state === 'available') logger.info(fields, 'DPoP replay store available');
      else if (event.fallback === 'local') {
        logger.error(
          fields,
          "DPoP replay store unavailable: proofs are checked against this process's own store until it is back (fallback: local)",
        );
      } else
        logger.error(fields, 'DPoP replay store unavailable: DPoP proofs are answered 503 until it is back');
    },
    onFault: (cause) => metrics?.recordReplayStoreFault?.(cause),
    // Once per history (each worker may see it first): a new Redis, or one that lost its data.
    onHistoryBegan: (sinceMs) =>
      logger.warn(
        { event: 'replay_store_history', since: new Date(sinceMs).toISOString() },
        'the Redis of the DPoP replay store held no replay history (new, restarted without its data, or flushed): it begins now, and proofs issued before are answered 503 until their windows close',
      ),
    onEvictionPolicy: (policy) =>
      logger.warn(
        { event: 'replay_store_eviction', maxmemory_policy: policy },
        'the Redis of the DPoP replay store may evict keys under memory pressure (maxmemory-policy is not noeviction): an entry evicted early lets its proof be replayed',
      ),
  });
  const possession: PossessionState = {
    replayStore: replayStores.local,
    nonces:
      options.dpopNonceKey === undefined ? DpopNonces.withRandomKey() : new DpopNonces(options.dpopNonceKey),
    proofKeys: new DpopProofKeys(),
  };
  metrics?.readDpopReplayEntriesFrom?.(() => replayStores.local.size);
  metrics?.readReplayStoreUpFrom?.(() => replayStores.up);
  /**
   * A policy with its issuers' keys and the verifier built on them; swapped in one assignment, so a
   * request reads one version. Issuers whose key settings did not change keep their cached keys.
   */
  const activate = (policy: CompiledPolicy, previous?: KeyRing): ServedPolicy => {
    const keyRing = createKeyRing(policy, keyRingDependencies, previous);
    const verifier = bearerTokenVerifier({
      policy,
      keysFor: (issuer) => keyRing.keysFor(issuer),
      now,
      tokenCaches: keyRing.tokenCaches,
      possession: { ...possession, replayStore: replayStores.forPolicy(policy.dpopReplayStore) },
      ...(options.tracing === undefined ? {} : { steps: options.tracing.steps }),
    });
    // Built now, at load, rather than by the first request under this version.
    for (const service of policy.services) preparedOutcomes(service);
    return { policy, keyRing, verifier };
  };
  const watcher = await PolicyWatcher.start({
    policyFile: options.policyFile,
    logger,
    ...(options.allowPolicyErrors === true ? { allowPolicyErrors: true } : {}),
    onPolicy: (policy) => {
      active = activate(policy, active.keyRing);
      void active.keyRing.prefetch(); // new issuers' keys; unchanged ones are already cached
    },
    onReload: (result) => {
      // Counted: attempts that judged a changed file (`unchanged` and `restored` put nothing new in force);
      // in a policy directory, each file judged (one attempt may apply a file and refuse another).
      const counted = watcher.lastFileResults ?? (result === 'ok' || result === 'error' ? [result] : []);
      for (const fileResult of counted) metrics?.recordPolicyReload(fileResult);
      if (result === 'ok') {
        metrics?.setPolicyInfo({ version: active.policy.version, source: active.policy.source });
        metrics?.setPolicyFindings?.(watcher.findings);
      }
      metrics?.setPolicyFileInForce?.(watcher.fileInForce);
      const files = watcher.fileVerdicts;
      if (files !== undefined) metrics?.setPolicyDirectoryFiles?.(files);
      updateHealth();
    },
  });
  refuseStartWithErrors(watcher, options);
  let active = activate(watcher.policy);
  metrics?.setPolicyInfo({ version: active.policy.version, source: active.policy.source });
  metrics?.recordInitialPolicyLoad?.();
  metrics?.setPolicyFileInForce?.(watcher.fileInForce);
  if (watcher.fileVerdicts !== undefined) metrics?.setPolicyDirectoryFiles?.(watcher.fileVerdicts);
  metrics?.setPolicyFindings?.(watcher.findings);
  metrics?.readTokenCacheEntriesFrom?.(() => active.keyRing.tokenCaches.sizes());
  metrics?.readKeyUsabilityFrom?.(() => active.keyRing.usability());

  const check = createCheckHandler({
    active: () => active,
    logger,
    now,
    ...(options.logAllowedSample === undefined ? {} : { logAllowedSample: options.logAllowedSample }),
    ...(options.tracing === undefined ? {} : { tracing: options.tracing }),
    ...(metrics === undefined
      ? {}
      : {
          observe: (decision, durationMs, service) =>
            observeDecision(metrics, decision, durationMs, service?.name ?? NO_SERVICE_LABEL),
        }),
  });

  const health = new HealthImplementation({ '': 'NOT_SERVING', [AUTHORIZATION_SERVICE]: 'NOT_SERVING' });
  let draining = false;
  let startingUp = true; // until the first fetch of every issuer has ended, or STARTUP_KEYS_WAIT_MS
  let reported: ServingStatus = 'NOT_SERVING';
  let own: ServingStatus = 'NOT_SERVING'; // this process alone; under a cluster, one vote of several
  // Issuers' keys play no part: an identity provider down must not take the pod out of service (nor have
  // liveness restart it); its tokens get 503 instead.
  function updateHealth(): void {
    const ownNow: ServingStatus = !draining && !startingUp ? 'SERVING' : 'NOT_SERVING';
    if (ownNow !== own) {
      own = ownNow;
      options.cluster?.reportHealth(own);
    }
    const clusterServing = options.cluster?.allServing() ?? true;
    const status: ServingStatus = own === 'SERVING' && clusterServing ? 'SERVING' : 'NOT_SERVING';
    if (status === reported) return;
    reported = status;
    health.setStatus('', status);
    health.setStatus(AUTHORIZATION_SERVICE, status);
    const reason =
      status === 'SERVING' ? 'ready' : draining ? 'draining' : startingUp ? 'starting' : 'worker_not_serving';
    logger.info({ event: 'health', status, reason }, `health ${status} (${reason})`);
  }

  const traced = options.tracing !== undefined;
  const loggedFaultKinds = new Set<string>();
  let checksInFlight = 0;
  metrics?.readChecksInFlightFrom?.(() => checksInFlight);
  const server = new Server(SERVER_OPTIONS);
  health.addToServer(server);
  options.cluster?.onVerdict(updateHealth);
  server.addService(loadAuthorizationService(), {
    Check: (
      call: { request: CheckRequestMessage; metadata: Metadata },
      callback: (error: Partial<ServiceError> | null, response?: CheckResponseMessage) => void,
    ) => {
      checksInFlight++;
      check(call.request, traced ? metadataFields(call.metadata) : undefined).then(
        (response) => {
          checksInFlight--;
          callback(null, response);
        },
        (error: unknown) => {
          checksInFlight--;
          // Envoy answers a gRPC error with `status_on_error` (503, docs/answers.md). Logged in full once
          // per kind of fault, then counted: a fault that hits every request must not flood the log.
          const kind = checkFaultKind(error);
          metrics?.recordCheckFault?.(kind);
          if (!loggedFaultKinds.has(kind) && loggedFaultKinds.size < MAX_LOGGED_FAULT_KINDS) {
            loggedFaultKinds.add(kind);
            logger.error(
              { event: 'check_failed', kind, err: error },
              'internal error while checking a request (answered 503; further ones of this kind are only counted)',
            );
          }
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
  }).catch(async (error: unknown) => {
    await replayStores.close(); // an open Redis connection would keep the failed process alive
    throw error;
  });
  const { policy } = active;
  const listening = { listen: options.listen, port, policy: policy.source, policy_version: policy.version };
  if (options.cluster === undefined) {
    logger.info({ event: 'started', ...listening }, 'authz server listening');
  } else {
    const { worker } = options.cluster;
    logger.info({ event: 'worker_started', worker, ...listening }, 'authz worker listening');
    options.cluster.listening({ port, policy: policy.source, policyVersion: policy.version });
  }
  if (options.watchPolicy !== false) watcher.watch();
  // The shared replay store's first connection is waited for too, so that the first DPoP requests after
  // SERVING find it connected; neither wait outlasts STARTUP_KEYS_WAIT_MS.
  const firstFetches = Promise.all([active.keyRing.prefetch(), replayStores.firstAttempt()]);
  void waitWithTimer(firstFetches, STARTUP_KEYS_WAIT_MS).then(() => {
    startingUp = false;
    const withoutKeys = active.keyRing
      .usability()
      .filter((issuer) => !issuer.usable)
      .map((issuer) => issuer.issuer);
    if (withoutKeys.length > 0) {
      logger.warn(
        { event: 'serving_without_keys', issuers: withoutKeys },
        'start-up over with issuers still without keys: serving; their tokens are answered 503 until their keys are fetched',
      );
    }
    updateHealth();
  });
  const healthTimer = setInterval(() => {
    const { keyRing } = active;
    // Refreshes happen here too, so keys stay fresh (and staleness is noticed) with no traffic at all.
    keyRing.refreshIfDue();
    if (!keyRing.ready) void keyRing.prefetch();
    updateHealth();
  }, HEALTH_INTERVAL_MS);
  healthTimer.unref();

  let closing: Promise<void> | undefined;
  return {
    port,
    reload: () => watcher.reload('signal'),
    close: ({ drainMs = 0, graceMs = 10_000 } = {}) =>
      (closing ??= (async () => {
        draining = true;
        updateHealth();
        logger.info({ event: 'draining', drain_ms: drainMs, grace_ms: graceMs }, 'draining');
        if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
        watcher.stop();
        clearInterval(healthTimer);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            logger.warn({ event: 'shutdown_forced' }, 'calls still in flight after the grace period');
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await replayStores.close();
        logger.info({ event: 'stopped' }, 'authz server stopped');
      })()),
  };
}

/**
 * The reload guard at start (docs/policy-checks.md): a policy with error-level findings not accepted is
 * refused, as a reload to it would be, unless the policy turns the guard off or the operator says
 * `--allow-policy-errors`. Old pods keep serving during a rollout, so refusing to start is safe.
 *
 * @throws PolicyError ERR_POLICY_FINDINGS naming each finding with its file:line, code and fix.
 */
function refuseStartWithErrors(watcher: PolicyWatcher, options: AuthzServerOptions): void {
  if (watcher.policy.reloadGuard === 'off') return;
  const blocking = reloadBlockingFindings([], watcher.findings);
  if (blocking.length === 0) return;
  if (options.allowPolicyErrors === true) {
    options.logger.warn(
      { event: 'policy_errors_allowed', codes: [...new Set(blocking.map((finding) => finding.code))] },
      'serving a policy with error-level findings (--allow-policy-errors)',
    );
    return;
  }
  throw new PolicyError(
    'ERR_POLICY_FINDINGS',
    blocking.map((finding) => ({
      file: finding.file ?? options.policyFile,
      line: finding.line,
      column: finding.column,
      path: finding.path,
      message: `${finding.message} (${finding.code}; fix: ${finding.fix} Or accept it with accept_risks, or start with --allow-policy-errors)`,
    })),
  );
}

/** What the server holds for the policy in force: what the handler reads, plus the keys for health. */
interface ServedPolicy extends ActivePolicy {
  readonly keyRing: KeyRing;
}

/** A call's gRPC metadata as trace propagation fields (the first text value of each key). */
function metadataFields(metadata: Metadata): TraceFieldReader {
  return (name) => {
    const value = metadata.get(name)[0];
    return typeof value === 'string' ? value : undefined;
  };
}

/** Distinct kinds of Check fault logged in full; past it, faults are only counted. */
const MAX_LOGGED_FAULT_KINDS = 32;

/** The `service` label of a decision made before any service was chosen (like `route="(none)"`). */
const NO_SERVICE_LABEL = '(none)';

function observeDecision(
  metrics: ServerMetrics,
  decision: Decision,
  durationMs: number,
  service: string,
): void {
  const wouldDeny = decision.kind === 'allow' ? decision.wouldDeny : undefined;
  metrics.recordDecision({
    service,
    route: decision.route?.name ?? '(none)',
    outcome: decision.kind === 'deny' ? 'deny' : wouldDeny !== undefined ? 'would_deny' : 'allow',
    reason: decision.kind === 'deny' ? decision.code : (wouldDeny?.code ?? 'allowed'),
    durationSeconds: durationMs / 1000,
  });
}
