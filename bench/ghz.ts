import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CHECK_METHOD, CHECK_PROTO, PROTOS_DIR } from './authorization-service.js';
import type { DataFile } from './bench-tokens.js';

const run = promisify(execFile);

/** How long, how many or how fast: a closed loop for a duration or a count, or an open loop at a rate. */
export type GhzLoad =
  | { readonly seconds: number }
  | { readonly total: number }
  | { readonly seconds: number; readonly rps: number };

/** What one ghz run measured. */
export interface GhzResult {
  /** Calls made. */
  readonly count: number;
  /** How long the calls took, start-up excluded, in seconds. */
  readonly seconds: number;
  /** Calls answered with gRPC status OK per second over the run. */
  readonly rps: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /**
   * Calls that did not end with gRPC status OK (transport errors, deadlines...), not counting those ghz
   * itself cancels when a timed run ends (up to one per call in flight, as Unavailable or Canceled).
   */
  readonly failed: number;
  /** ghz's status code distribution, e.g. `{ OK: 51234 }`. */
  readonly statusCodes: Readonly<Record<string, number>>;
}

/** The part of ghz's JSON report (`--format json`) the bench reads; times are in nanoseconds. */
interface GhzReport {
  count: number;
  total: number;
  average: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution: Record<string, number> | null;
}

const NS_PER_MS = 1e6;

/**
 * Runs ghz against the Check method of `address` with the requests of `data` (round robin), 50 calls in
 * flight on one HTTP/2 connection (Envoy too keeps one connection per worker thread).
 *
 * @param reportDir where ghz writes its JSON report (removed once read)
 */
export async function runGhz(options: {
  ghz: string;
  address: string;
  data: DataFile;
  load: GhzLoad;
  reportDir: string;
  concurrency?: number;
}): Promise<GhzResult> {
  const { load } = options;
  const concurrency = options.concurrency ?? 50;
  const reportFile = path.join(options.reportDir, `ghz-${process.hrtime.bigint()}.json`);
  const args = [
    '--insecure',
    '--proto',
    path.join(PROTOS_DIR, CHECK_PROTO),
    '--import-paths',
    PROTOS_DIR,
    '--call',
    CHECK_METHOD,
    '--binary-file',
    options.data.file,
    // Without these ghz builds a text/template with some 200 functions for every call, which made it the
    // bottleneck: the requests are sent as they are.
    '--disable-template-functions',
    '--disable-template-data',
    '--concurrency',
    String(concurrency),
    ...('total' in load ? ['--total', String(load.total)] : ['--duration', `${load.seconds}s`]),
    ...('rps' in load ? ['--rps', String(Math.max(1, Math.round(load.rps)))] : []),
    '--format',
    'json',
    '--output',
    reportFile,
    options.address,
  ];
  try {
    // The load generator has one core: no garbage collection below 2 GiB of heap (GOGC=off with a soft
    // limit), so that scanning 100,000 decoded requests does not slow it down.
    await run(options.ghz, args, {
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, GOGC: 'off', GOMEMLIMIT: '2GiB' },
    });
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as GhzReport;
    const percentile = (percentage: number): number =>
      (report.latencyDistribution?.find((entry) => entry.percentage === percentage)?.latency ?? NaN) /
      NS_PER_MS;
    const statusCodes = report.statusCodeDistribution ?? {};
    const ok = statusCodes['OK'] ?? 0;
    const cutShort = 'total' in load ? 0 : (statusCodes['Unavailable'] ?? 0) + (statusCodes['Canceled'] ?? 0);
    return {
      count: report.count,
      seconds: report.total / 1e9,
      rps: ok / (report.total / 1e9),
      meanMs: report.average / NS_PER_MS,
      p50Ms: percentile(50),
      p99Ms: percentile(99),
      failed: report.count - ok - Math.min(cutShort, concurrency),
      statusCodes,
    };
  } finally {
    await rm(reportFile, { force: true });
  }
}
