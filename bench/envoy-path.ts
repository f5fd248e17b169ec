import type { BenchContext } from './bench-context.js';
import { runH2load, type H2loadResult } from './h2load.js';
import { count, ms, percent } from './results-table.js';
import { envoyConfigFor, startEnvoy } from '../test/kit/envoy.js';
import { freePorts } from '../test/kit/free-port.js';
import { startCliAndWait, type KitProcess } from '../test/kit/process.js';

/** One HTTP request shape sent through Envoy, and the status it must get. */
export interface HttpScenario {
  readonly label: string;
  readonly path: string;
  /** h2load `--header` values, `name: value`. */
  readonly headers: readonly string[];
  readonly status: number;
}

/** What the rounds of one HTTP scenario measured together (medians over the rounds). */
export interface HttpResult {
  readonly rps: number;
  readonly meanMs: number;
  /** The share of the server core Envoy, authz and the bank used together while it was timed. */
  readonly busy: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Starts the measured CLI on the server core, output to a log file, and waits for its `started` line. */
async function startCliProcess(
  context: BenchContext,
  name: string,
  args: readonly string[],
): Promise<KitProcess> {
  const { process: child } = await startCliAndWait(args, {
    name,
    entry: context.cli,
    logFile: context.logFile(name),
    cwd: context.target,
    ...(context.cpus === undefined ? {} : { cpu: context.cpus.server }),
  });
  context.onCleanup(async () => {
    await child.stop();
  });
  return child;
}

/**
 * P4: the real Envoy (envoy/envoy.yaml with its ports changed, `--concurrency 1`), `authz serve` with
 * default logging and `authz bank`, all three on the server core; h2load (`--h1`, one request in flight
 * per client) on the load core. Each scenario is checked with one request, then timed in `rounds`
 * interleaved rounds of `secondsPerRun` (after `warmUpSeconds` of untimed load each), medians kept.
 *
 * @returns results by scenario label; a scenario that answers otherwise is left out, with a note
 */
export async function measureThroughEnvoy(
  context: BenchContext,
  options: {
    policyFile: string;
    scenarios: readonly HttpScenario[];
    clients: number;
    rounds: number;
    secondsPerRun: number;
    warmUpSeconds: number;
  },
): Promise<Map<string, HttpResult>> {
  const [listen, admin, authzPort, bankPort] = (await freePorts(4)) as [number, number, number, number];
  const bank = await startCliProcess(context, 'authz bank', ['bank', '--listen', `127.0.0.1:${bankPort}`]);
  const authz = await startCliProcess(context, 'authz serve (behind Envoy)', [
    'serve',
    '--policy',
    options.policyFile,
    '--listen',
    `127.0.0.1:${authzPort}`,
  ]);
  // startEnvoy's defaults: no hot restart (no shared memory), one worker thread, as measured here.
  const envoy = await startEnvoy({
    config: { text: envoyConfigFor({ listen, admin, authz: authzPort, bank: bankPort }) },
    admin,
    binary: context.tools.envoy,
    logFile: context.logFile('envoy'),
    ...(context.cpus === undefined ? {} : { cpu: context.cpus.server }),
  });
  context.onCleanup(envoy.stop);

  const base = `http://127.0.0.1:${listen}`;
  const valid: HttpScenario[] = [];
  for (const scenario of options.scenarios) {
    const headers = Object.fromEntries(
      scenario.headers.map((header) => header.split(': ', 2) as [string, string]),
    );
    const response = await fetch(`${base}${scenario.path}`, { headers });
    await response.arrayBuffer();
    if (response.status === scenario.status) valid.push(scenario);
    else
      context.note(
        `Envoy, ${scenario.label}: not timed, it answered ${response.status}, not ${scenario.status}`,
      );
  }

  const serverCpu = () => envoy.process.cpuSeconds() + authz.cpuSeconds() + bank.cpuSeconds();
  const runs = new Map(valid.map((scenario) => [scenario, [] as { result: H2loadResult; busy: number }[]]));
  for (let round = 0; round < options.rounds; round++) {
    for (const scenario of valid) {
      const cpuBefore = serverCpu();
      const started = Date.now();
      const result = await runH2load({
        h2load: context.tools.h2load,
        url: `${base}${scenario.path}`,
        seconds: options.secondsPerRun,
        warmUpSeconds: options.warmUpSeconds,
        clients: options.clients,
        headers: scenario.headers,
      });
      runs.get(scenario)!.push({ result, busy: (serverCpu() - cpuBefore) / ((Date.now() - started) / 1000) });
      const expectedClass = `${String(scenario.status)[0]}xx`;
      const unexpected = result.done - (result.statusClasses[expectedClass] ?? 0) + result.errored;
      if (unexpected > 0) {
        context.note(
          `Envoy, ${scenario.label}: ${count(unexpected)} of ${count(result.done)} requests were not ` +
            `${expectedClass} (${JSON.stringify(result.statusClasses)}, ${result.errored} errored)`,
        );
      }
    }
    context.progress(`  round ${round + 1} of ${options.rounds} done`);
  }
  await envoy.stop();
  await Promise.all([authz.stop(), bank.stop()]);

  const results = new Map<string, HttpResult>();
  for (const [scenario, scenarioRuns] of runs) {
    const result: HttpResult = {
      rps: median(scenarioRuns.map((run) => run.result.rps)),
      meanMs: median(scenarioRuns.map((run) => run.result.meanMs)),
      busy: median(scenarioRuns.map((run) => run.busy)),
    };
    const perRound = scenarioRuns.map((run) => run.result.rps);
    context.progress(
      `  ${scenario.label.padEnd(58)} ${count(result.rps).padStart(6)} req/s (rounds ` +
        `${count(Math.min(...perRound))}–${count(Math.max(...perRound))}); mean ${ms(result.meanMs)}; ` +
        `Envoy + authz + bank CPU ${percent(result.busy)}`,
    );
    results.set(scenario.label, result);
  }
  return results;
}
