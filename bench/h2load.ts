import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What one h2load run measured. */
export interface H2loadResult {
  /** Requests completed in the measured period. */
  readonly done: number;
  readonly rps: number;
  readonly meanMs: number;
  /** Responses by status class, e.g. `{ '2xx': 1000, '4xx': 0 }`. */
  readonly statusClasses: Readonly<Record<string, number>>;
  /** Requests that got no response (connection errors, timeouts). */
  readonly errored: number;
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000 };

function milliseconds(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (match === null) throw new Error(`h2load: cannot read the duration "${text}"`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/** Reads h2load's summary (nghttp2 1.52: "finished in", "requests:", "status codes:", "time for request"). */
export function parseH2loadOutput(output: string): H2loadResult {
  const line = (prefix: string): string => {
    const found = output.split('\n').find((candidate) => candidate.startsWith(prefix));
    if (found === undefined) throw new Error(`h2load printed no "${prefix}" line:\n${output.slice(-2000)}`);
    return found;
  };
  const count = (text: string, label: string): number =>
    Number(new RegExp(`(\\d+) ${label}`).exec(text)?.[1]);
  const finished = /([\d.]+) req\/s/.exec(line('finished in'));
  const requests = line('requests:');
  const statuses = line('status codes:');
  const times = line('time for request:').slice('time for request:'.length).trim().split(/\s+/);
  return {
    done: count(requests, 'done'),
    rps: Number(finished?.[1]),
    meanMs: milliseconds(times[2] ?? ''),
    statusClasses: Object.fromEntries(
      ['2xx', '3xx', '4xx', '5xx'].map((label) => [label, count(statuses, label)]),
    ),
    errored: count(requests, 'errored') + count(requests, 'timeout'),
  };
}

/**
 * `h2load --h1 -c CLIENTS -D SECONDS --warm-up-time WARM` against `url` (HTTP/1.1 keep-alive, one request
 * in flight per client), with the given request headers.
 */
export async function runH2load(options: {
  h2load: string;
  url: string;
  seconds: number;
  warmUpSeconds: number;
  clients: number;
  headers?: readonly string[];
}): Promise<H2loadResult> {
  const args = [
    '--h1',
    '--clients',
    String(options.clients),
    '--duration',
    String(options.seconds),
    '--warm-up-time',
    String(options.warmUpSeconds),
    ...(options.headers ?? []).flatMap((header) => ['--header', header]),
    options.url,
  ];
  const { stdout } = await run(options.h2load, args, { maxBuffer: 16 * 1024 * 1024 });
  return parseH2loadOutput(stdout);
}
