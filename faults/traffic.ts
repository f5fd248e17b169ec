import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';

/** One request the traffic sends, and what it is (for the figures). */
export interface TrafficRequest {
  /** What the request is, e.g. `valid`, `expired`, `transfer-valid`. */
  readonly kind: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Anything the scenario wants to find again in the outcome (an account, a key). */
  readonly tag?: string;
}

/** What became of one request. */
export interface Outcome {
  readonly kind: string;
  readonly tag: string | undefined;
  /** The traffic's phase when the request was sent. */
  readonly phase: string;
  /** When it was sent, ms since the epoch. */
  readonly sentAt: number;
  /** The HTTP status; 0 when no answer came (connection error or timeout). */
  readonly status: number;
  /** From sending to the end of the answer, ms. */
  readonly ms: number;
  /**
   * The answer's `WWW-Authenticate` header lines, each on its own (a route that accepts both `Bearer` and
   * `DPoP` challenges with one line per scheme); empty when there is none.
   */
  readonly challenges: readonly string[];
  /** Why no answer came (status 0), or who answered a 5xx (serverErrorCause). */
  readonly error: string | undefined;
}

/** A running stream of requests. */
export interface Traffic {
  /** Outcomes of every request answered (or failed) so far. */
  readonly outcomes: readonly Outcome[];
  /** Requests sent so far. */
  readonly sent: number;
  /** Requests sent from now on are recorded under `phase`. */
  phase(phase: string): void;
  /** Stops sending, waits for every request in flight, and returns every outcome in the order sent. */
  stop(): Promise<Outcome[]>;
}

/**
 * Who answered a 5xx, from its body: authz itself (a JSON `temporarily_unavailable`: keys or the replay store
 * unavailable), Envoy because the ext_authz call failed or timed out (`status_on_error`, an empty body), or
 * Envoy because the upstream reset the connection (its plain-text `upstream connect error...`).
 */
export function serverErrorCause(body: string): string {
  if (body === '') return 'ext_authz failed';
  if (body.startsWith('{') && body.includes('temporarily_unavailable')) return 'authz unavailable';
  if (body.startsWith('upstream connect error')) return 'upstream reset';
  return 'other';
}

const TICK_MS = 5;
const REQUEST_TIMEOUT_MS = 10_000; // 10 seconds: Envoy answers 503 after its 1 s ext_authz timeout

/**
 * Sends requests to `baseUrl` at `rate` per second, open loop: each on its schedule whatever became of the
 * earlier ones, so a stall shows as latency and failures rather than as fewer requests. `next(n)` builds
 * the n-th request (it may sign a token). HTTP/1.1 keep-alive over at most 256 connections; every request's
 * outcome is recorded.
 */
export function startTraffic(options: {
  baseUrl: string;
  rate: number;
  next: (sequence: number) => TrafficRequest | Promise<TrafficRequest>;
  phase?: string;
}): Traffic {
  const { hostname, port } = new URL(options.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const outcomes: { sequence: number; outcome: Outcome }[] = [];
  const inFlight = new Set<Promise<void>>();
  let phase = options.phase ?? 'main';
  let sent = 0;
  const started = performance.now();

  const send = async (sequence: number): Promise<void> => {
    const spec = await options.next(sequence);
    const recordedPhase = phase;
    const body = spec.json === undefined ? undefined : JSON.stringify(spec.json);
    const headers: Record<string, string> = { ...spec.headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const sentAt = Date.now();
    const t0 = performance.now();
    const outcome = await new Promise<Omit<Outcome, 'kind' | 'tag' | 'phase' | 'sentAt'>>((resolve) => {
      const req = httpRequest(
        { agent, host: hostname, port, method: spec.method, path: spec.path, headers },
        (response) => {
          // The start of a 5xx body, to tell who answered it (serverErrorCause); others are not kept.
          let head = '';
          const status = response.statusCode ?? 0;
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            if (status >= 500 && head.length < 200) head += chunk.slice(0, 200 - head.length);
          });
          response.once('end', () =>
            resolve({
              status,
              ms: performance.now() - t0,
              challenges: response.rawHeaders.filter(
                (_value, index, raw) =>
                  index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'www-authenticate',
              ),
              error: status >= 500 ? serverErrorCause(head) : undefined,
            }),
          );
          response.once('error', (error) =>
            resolve({ status: 0, ms: performance.now() - t0, challenges: [], error: error.message }),
          );
        },
      );
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
      req.once('error', (error) =>
        resolve({ status: 0, ms: performance.now() - t0, challenges: [], error: error.message }),
      );
      req.end(body);
    });
    outcomes.push({
      sequence,
      outcome: { kind: spec.kind, tag: spec.tag, phase: recordedPhase, sentAt, ...outcome },
    });
  };

  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * options.rate);
    while (sent < due) {
      const sequence = sent++;
      const pending = send(sequence).catch((error: unknown) => {
        // Building the request failed (a bug in the scenario): record it, never lose a request silently.
        outcomes.push({
          sequence,
          outcome: {
            kind: 'unbuilt',
            tag: undefined,
            phase,
            sentAt: Date.now(),
            status: 0,
            ms: 0,
            challenges: [],
            error: (error as Error).message,
          },
        });
      });
      inFlight.add(pending);
      void pending.finally(() => inFlight.delete(pending));
    }
  }, TICK_MS);

  let stopping: Promise<Outcome[]> | undefined;
  return {
    get outcomes() {
      return outcomes.map((entry) => entry.outcome);
    },
    get sent() {
      return sent;
    },
    phase: (next) => {
      phase = next;
    },
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(timer);
        while (inFlight.size > 0) await Promise.all([...inFlight]);
        agent.destroy();
        return [...outcomes].sort((a, b) => a.sequence - b.sequence).map((entry) => entry.outcome);
      })()),
  };
}

/**
 * Traffic of a fixed mix of kinds, in rounds: request n is of kind `mix[n % mix.length]`, built by
 * `build(kind, round)` for round `floor(n / mix.length)` (a round number picks an account, say).
 */
export function startMixedTraffic<Kind extends string>(options: {
  baseUrl: string;
  rate: number;
  mix: readonly Kind[];
  build: (kind: Kind, round: number) => Promise<TrafficRequest>;
}): Traffic {
  const { mix, build } = options;
  return startTraffic({
    baseUrl: options.baseUrl,
    rate: options.rate,
    next: (n) => build(mix[n % mix.length]!, Math.floor(n / mix.length)),
  });
}
