import type { FetchKeySet } from '../../src/authn/read-key-set.js';
import {
  startAuthzServer,
  type RunningAuthzServer,
  type ServerMetrics,
} from '../../src/server/authz-server.js';
import {
  AUDIENCE,
  connectCheckClient,
  connectHealthClient,
  createLogSink,
  createTempDir,
  httpCheckRequest,
  ISSUER,
  startupFetchesEnded,
  REALM,
  writeTextFile,
  type CheckClient,
  type CheckResponseView,
  type HealthClient,
  type HttpCheckInit,
  type LogSink,
} from './authz-harness.js';
import { RecordingMetrics } from './recording-metrics.js';

/** One trusted issuer of a policy written by `policyText`. */
export interface IssuerEntry {
  readonly issuer?: string; // default ISSUER
  readonly jwksUri: string;
  /** More issuer keys, e.g. `{ jwks_refresh_cooldown: '1s' }`. */
  readonly settings?: Readonly<Record<string, string>>;
}

/**
 * A policy's text: `version`, `realm`, the issuers (audience AUDIENCE, RS256), then one line per route, each
 * a YAML flow mapping such as `{ methods: [GET], path: /balance, scopes: [view:balance] }`.
 */
export function policyText(issuers: readonly IssuerEntry[], routes: readonly string[]): string {
  return [
    'version: 1',
    `realm: ${REALM}`,
    'issuers:',
    ...issuers.flatMap((entry) => [
      `  - issuer: ${entry.issuer ?? ISSUER}`,
      `    audiences: [${AUDIENCE}]`,
      `    jwks_uri: ${entry.jwksUri}`,
      '    algorithms: [RS256]',
      ...Object.entries(entry.settings ?? {}).map(([key, value]) => `    ${key}: ${value}`),
    ]),
    routes.length === 0 ? 'routes: []' : 'routes:',
    ...routes.map((route) => `  - ${route}`),
    '',
  ].join('\n');
}

/** The bank's routes with GET /balance requiring `balanceScopes`. */
export function bankRoutes(balanceScopes: readonly string[]): string[] {
  return [
    `{ methods: [GET], path: /balance, scopes: [${balanceScopes.join(', ')}] }`,
    '{ methods: [POST], path: /transfer, scopes: [transfer:funds] }',
    '{ path: /healthz, public: true }',
  ];
}

/** What one Check was answered: `allow`, or `deny <HTTP status>`. */
export function outcomeOf(response: CheckResponseView): string {
  if (response.http_response === 'ok_response' && response.status?.code === 0) return 'allow';
  if (response.http_response === 'denied_response') {
    return `deny ${response.denied_response?.status?.code ?? '?'}`;
  }
  throw new Error(`not a CheckResponse answer: ${JSON.stringify(response)}`);
}

/** The production server in this process, on 127.0.0.1, with its logs and metrics recorded. */
export interface PolicyServer<Metrics extends ServerMetrics = RecordingMetrics> {
  readonly dir: string;
  readonly policyFile: string;
  readonly sink: LogSink;
  readonly metrics: Metrics;
  readonly server: RunningAuthzServer;
  readonly client: CheckClient;
  readonly health: HealthClient;
  /** Sends a Check for `init` with a fresh request id; resolves with the answer and that id. */
  check(init: Omit<HttpCheckInit, 'id'>): Promise<{ response: CheckResponseView; id: string }>;
  /** The outcome of one Check (see `outcomeOf`). */
  outcome(init: Omit<HttpCheckInit, 'id'>): Promise<string>;
  /** The one decision line logged for a request id (throws unless exactly one). */
  decisionLine(id: string): Record<string, unknown>;
  /** Log lines with `event` set to this value. */
  events(event: string): Record<string, unknown>[];
  /** Closes the clients, then the server (1 s grace, once), then deletes the folder. */
  stop(): Promise<void>;
}

export interface PolicyServerOptions<Metrics extends ServerMetrics = RecordingMetrics> {
  /** The policy text, written to DIR/policy.yaml... */
  readonly policy?: string;
  /** ...or lays out DIR itself and returns the policy path to serve. */
  readonly prepare?: (dir: string) => Promise<string>;
  readonly now?: () => number;
  readonly logAllowedSample?: number;
  readonly fetchKeySet?: FetchKeySet;
  /**
   * Watch and poll the file (default true). Off for tests of reload() alone: the watcher would otherwise
   * race it to an edit on a slow machine, and whichever came second would find the file 'unchanged'.
   */
  readonly watchPolicy?: boolean;
  /**
   * Wait for every issuer's start-up key set fetch to end before returning (default true; see
   * startupFetchesEnded). Off for a test that holds that fetch on purpose.
   */
  readonly awaitStartupFetches?: boolean;
  /** What the server reports to (default: a RecordingMetrics), e.g. the production metrics and registry. */
  readonly metrics?: Metrics;
  /** Start of the temporary folder's name (default `authz-reload-`). */
  readonly tempPrefix?: string;
}

let requestCounter = 0;

export async function startPolicyServer<Metrics extends ServerMetrics = RecordingMetrics>(
  options: PolicyServerOptions<Metrics>,
): Promise<PolicyServer<Metrics>> {
  const temp = await createTempDir(options.tempPrefix ?? 'authz-reload-');
  try {
    const policyFile =
      options.prepare !== undefined
        ? await options.prepare(temp.dir)
        : await writeTextFile(temp.dir, 'policy.yaml', options.policy ?? '');
    const sink = createLogSink();
    const metrics = options.metrics ?? (new RecordingMetrics() as ServerMetrics as Metrics);
    const server = await startAuthzServer({
      policyFile,
      listen: '127.0.0.1:0',
      logger: sink.logger,
      metrics,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.logAllowedSample === undefined ? {} : { logAllowedSample: options.logAllowedSample }),
      ...(options.fetchKeySet === undefined ? {} : { fetchKeySet: options.fetchKeySet }),
      ...(options.watchPolicy === undefined ? {} : { watchPolicy: options.watchPolicy }),
    });
    const client = connectCheckClient(server.port);
    const health = connectHealthClient(server.port);
    if (options.awaitStartupFetches !== false) await startupFetchesEnded(sink, policyFile);
    const check = async (init: Omit<HttpCheckInit, 'id'>) => {
      const id = `reload-${++requestCounter}`;
      return { response: await client.check(httpCheckRequest({ ...init, id })), id };
    };
    const events = (event: string) => sink.records().filter((record) => record['event'] === event);
    return {
      dir: temp.dir,
      policyFile,
      sink,
      metrics,
      server,
      client,
      health,
      check,
      outcome: async (init) => outcomeOf((await check(init)).response),
      decisionLine: (id) => {
        const lines = events('decision').filter((record) => record['request_id'] === id);
        if (lines.length !== 1) throw new Error(`${lines.length} decision lines for ${id}`);
        return lines[0]!;
      },
      events,
      stop: async () => {
        client.close();
        health.close();
        await server.close({ graceMs: 1000 });
        await temp.remove();
      },
    };
  } catch (error) {
    await temp.remove();
    throw error;
  }
}
