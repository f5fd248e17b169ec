import type { BenchContext } from './bench-context.js';
import type { DataFile } from './bench-tokens.js';
import { runGhz, type GhzLoad, type GhzResult } from './ghz.js';
import { answers, describeAnswer, type Expected, type GrpcServer } from './grpc-servers.js';
import { count, ms, percent } from './results-table.js';
import type { KitProcess } from '../test/kit/process.js';

/** One thing to time: a server, the requests it gets, and the answer they must get. */
export interface GrpcScenario {
  readonly server: GrpcServer;
  readonly label: string;
  /**
   * The requests of each round, in turn (round r sends `data[r % data.length]`): one file per round keeps
   * the tokens of a unique-token scenario unseen by the server until their round.
   */
  readonly data: readonly DataFile[];
  readonly expected: Expected;
  /**
   * The server may cache verified tokens, or a request is good only once (a DPoP proof): a run must not
   * send a request twice (noted if it does).
   */
  readonly unseenTokens?: boolean;
  /**
   * The request asked once before timing (default: the first request of the first file). A scenario whose
   * requests are good only once brings one of its own, so that no timed request has been used up.
   */
  readonly probe?: object;
  /**
   * Other processes the server asks to answer each Check (a Redis replay store): their CPU time over the
   * runs is reported apart, per Check, beside the server's.
   */
  readonly helpers?: readonly KitProcess[];
}

/** What the rounds of one scenario measured together. */
export interface ScenarioResult {
  /** Median over the rounds of the Check/s answered OK. */
  readonly rps: number;
  /** Each round's Check/s. */
  readonly roundRps: readonly number[];
  /** Medians over the rounds. */
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The server's CPU time per call, all rounds together, in microseconds. */
  readonly cpuMicrosPerCall: number;
  /** The helpers' CPU time per call (GrpcScenario.helpers), in microseconds; 0 without helpers. */
  readonly helperCpuMicrosPerCall: number;
  /** The share of its core the server used while it was timed (1: saturated). */
  readonly busy: number;
}

/** A server using less of its core than this in a closed loop was held back by something else. */
export const SATURATED = 0.9;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function label(scenario: GrpcScenario): string {
  return `${scenario.server.name}, ${scenario.label}`;
}

/** Asks the server once with the scenario's probe; false (and a note) when it answers otherwise. */
async function answersAsExpected(context: BenchContext, scenario: GrpcScenario): Promise<boolean> {
  const response = await scenario.server.client.check(scenario.probe ?? scenario.data[0]!.sample);
  if (answers(response, scenario.expected)) return true;
  context.note(
    `${label(scenario)}: not timed, it answered ${describeAnswer(response)}, not ${scenario.expected.label}`,
  );
  return false;
}

/** One ghz run: what ghz measured, the server's CPU time over it, and whether a token was sent twice. */
interface TimedRun {
  readonly result: GhzResult;
  readonly cpuSeconds: number;
  readonly helperCpuSeconds: number;
  readonly repeatedTokens: boolean;
}

async function timedRun(
  context: BenchContext,
  scenario: GrpcScenario,
  data: DataFile,
  load: GhzLoad,
): Promise<TimedRun> {
  const helpers = scenario.helpers ?? [];
  const helpersCpu = () => helpers.reduce((sum, helper) => sum + helper.cpuSeconds(), 0);
  const cpuBefore = scenario.server.process.cpuSeconds();
  const helpersBefore = helpersCpu();
  const result = await runGhz({
    ghz: context.tools.ghz,
    address: scenario.server.address,
    data,
    load,
    reportDir: context.dir,
  });
  return {
    result,
    cpuSeconds: scenario.server.process.cpuSeconds() - cpuBefore,
    helperCpuSeconds: helpersCpu() - helpersBefore,
    repeatedTokens: scenario.unseenTokens === true && result.count > data.count,
  };
}

function summarise(
  context: BenchContext,
  scenario: GrpcScenario,
  runs: readonly TimedRun[],
  closedLoop: boolean,
): ScenarioResult {
  const cpuSeconds = runs.reduce((sum, run) => sum + run.cpuSeconds, 0);
  const helperCpuSeconds = runs.reduce((sum, run) => sum + run.helperCpuSeconds, 0);
  const calls = runs.reduce((sum, run) => sum + run.result.count, 0);
  const failed = runs.reduce((sum, run) => sum + run.result.failed, 0);
  if (failed > 0) {
    const codes = runs.map((run) => JSON.stringify(run.result.statusCodes)).join(', ');
    context.note(
      `${label(scenario)}: ${count(failed)} of ${count(calls)} calls did not end with gRPC OK (${codes})`,
    );
  }
  const repeated = runs.filter((run) => run.repeatedTokens).length;
  if (repeated > 0) {
    context.note(
      `${label(scenario)}: in ${repeated} of ${runs.length} runs there were more calls than tokens, ` +
        'so some were sent twice (a token may have been answered from a cache, a DPoP proof refused as a ' +
        'replay, which ghz counts as OK)',
    );
  }
  const seconds = runs.reduce((sum, run) => sum + run.result.seconds, 0);
  const summary: ScenarioResult = {
    rps: median(runs.map((run) => run.result.rps)),
    roundRps: runs.map((run) => run.result.rps),
    meanMs: median(runs.map((run) => run.result.meanMs)),
    p50Ms: median(runs.map((run) => run.result.p50Ms)),
    p99Ms: median(runs.map((run) => run.result.p99Ms)),
    cpuMicrosPerCall: (cpuSeconds / calls) * 1e6,
    helperCpuMicrosPerCall: (helperCpuSeconds / calls) * 1e6,
    busy: cpuSeconds / seconds,
  };
  const spread =
    runs.length > 1
      ? ` (rounds ${count(Math.min(...summary.roundRps))}–${count(Math.max(...summary.roundRps))})`
      : '';
  context.progress(
    `  ${label(scenario).padEnd(58)} ${count(summary.rps).padStart(6)} Check/s${spread}; ` +
      `p50 ${ms(summary.p50Ms)}, p99 ${ms(summary.p99Ms)}; server CPU ${percent(summary.busy)}, ` +
      `${count(summary.cpuMicrosPerCall)} µs per Check` +
      (scenario.helpers === undefined
        ? ''
        : ` (and ${count(summary.helperCpuMicrosPerCall)} µs per Check in ${scenario.helpers.length === 1 ? 'its helper' : 'its helpers'})`),
  );
  // In a closed loop a server that is the bottleneck keeps its core busy; one that did not was held back.
  if (closedLoop && summary.busy < SATURATED) {
    context.note(
      `${label(scenario)}: the server used ${percent(summary.busy)} of its core, so something else held it ` +
        'back (the load generator, or other work on the machine)',
    );
  }
  return summary;
}

/**
 * Times every scenario in `rounds` interleaved rounds of `secondsPerRun` each (closed loop), so that
 * whatever else the machine does in the meantime falls on all of them alike, and takes the median. Each
 * scenario's answer is checked first; one that answers otherwise is left out (with a note).
 */
export async function measureInterleaved(
  context: BenchContext,
  scenarios: readonly GrpcScenario[],
  options: { rounds: number; secondsPerRun: number },
): Promise<Map<GrpcScenario, ScenarioResult>> {
  const valid: GrpcScenario[] = [];
  for (const scenario of scenarios) if (await answersAsExpected(context, scenario)) valid.push(scenario);
  const runs = new Map(valid.map((scenario) => [scenario, [] as TimedRun[]]));
  for (let round = 0; round < options.rounds; round++) {
    const started = Date.now();
    for (const scenario of valid) {
      const data = scenario.data[round % scenario.data.length]!;
      runs.get(scenario)!.push(await timedRun(context, scenario, data, { seconds: options.secondsPerRun }));
    }
    context.progress(
      `  round ${round + 1} of ${options.rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
  return new Map(
    valid.map((scenario) => [scenario, summarise(context, scenario, runs.get(scenario)!, true)]),
  );
}

/** Times one scenario once with `load` (its answer checked first); undefined when it answers otherwise. */
export async function measureOnce(
  context: BenchContext,
  scenario: GrpcScenario,
  load: GhzLoad,
): Promise<ScenarioResult | undefined> {
  if (!(await answersAsExpected(context, scenario))) return undefined;
  const run = await timedRun(context, scenario, scenario.data[0]!, load);
  return summarise(context, scenario, [run], !('rps' in load));
}

/**
 * Load for `seconds` (or as `load` says) without timing it: JIT compilation and caches settle before the
 * rounds.
 */
export async function warmUp(
  context: BenchContext,
  server: GrpcServer,
  data: DataFile,
  load: number | GhzLoad,
): Promise<void> {
  await runGhz({
    ghz: context.tools.ghz,
    address: server.address,
    data,
    load: typeof load === 'number' ? { seconds: load } : load,
    reportDir: context.dir,
  });
}
