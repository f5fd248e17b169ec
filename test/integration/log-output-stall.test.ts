import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createBufferedDestination,
  LOG_LINES_DROPPED_EVENT,
  type BufferedDestination,
} from '../../src/log/buffered-destination.js';
import { createLogger } from '../../src/log/create-logger.js';
import { createTempDir, httpCheckRequest, policyYaml, writeTextFile } from '../kit/authz-harness.js';
import {
  CLI_BUILDS,
  killAllClis,
  missingBuild,
  startCli,
  stopCli,
  waitForStarted,
} from '../kit/cli-child.js';
import { outcomeOf } from '../kit/policy-server.js';
import { openSeparateConnection } from '../kit/separate-connection.js';
import { generateTestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';

/*
 * A log collector that stops reading: the output of `authz serve` is a pipe nobody reads for a while. What
 * the log destination holds for it is bounded (src/log/buffered-destination.ts), the lines past the bound
 * are dropped and counted (`authz_log_lines_dropped_total`), and once the pipe is read again one
 * `log_lines_dropped` line says how many. Every line is either written, whole, or counted.
 */

let temp: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  temp = await createTempDir('authz-log-stall-');
});

afterAll(async () => {
  killAllClis();
  await temp?.remove();
});

type LogLine = Record<string, unknown>;

const parse = (text: string): LogLine[] =>
  text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LogLine);

/**
 * A named pipe: a real OS pipe (64 KiB on Linux) whose reader reads only when the test says so. Both ends
 * are non-blocking, so that a full pipe answers the destination's writes with EAGAIN (which sonic-boom
 * retries every 100 ms) rather than holding a thread of this process; the bytes held are the same either
 * way.
 */
interface StalledPipe {
  readonly writeFd: number;
  /** Reads what the pipe holds at this moment, without waiting. */
  readNow(): Buffer;
  /** Closes the reading end: from then on, writes fail (EPIPE) rather than wait. */
  closeReader(): void;
  closeWriter(): void;
}

let pipes = 0;

function openStalledPipe(): StalledPipe {
  const fifo = path.join(temp.dir, `collector-${++pipes}.fifo`);
  execFileSync('mkfifo', [fifo]);
  // The reader first: a non-blocking open for writing fails (ENXIO) while a FIFO has none.
  let readFd: number | undefined = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  let writeFd: number | undefined = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  const chunk = Buffer.alloc(64 * 1024);
  return {
    writeFd,
    readNow() {
      const chunks: Buffer[] = [];
      for (;;) {
        let n: number;
        try {
          n = readSync(readFd!, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw error;
        }
        if (n === 0) break;
        chunks.push(Buffer.from(chunk.subarray(0, n)));
      }
      return Buffer.concat(chunks);
    },
    closeReader() {
      if (readFd !== undefined) closeSync(readFd);
      readFd = undefined;
    },
    closeWriter() {
      if (writeFd !== undefined) closeSync(writeFd);
      writeFd = undefined;
    },
  };
}

describe('the log destination, writing to a pipe nobody reads', () => {
  const maxBufferBytes = 64 * 1024; // 64 KiB: a bound a test fills in a moment
  let pipe: StalledPipe;
  let destination: BufferedDestination | undefined;

  beforeEach(() => {
    pipe = openStalledPipe();
    destination = undefined;
  });

  afterEach(async () => {
    // The reader first, so that a test that failed with the pipe full leaves no write waiting for it.
    pipe.closeReader();
    await destination?.flush();
    pipe.closeWriter();
  });

  it('holds at most maxBufferBytes, counts the lines past them, and says how many once the pipe is read again', async () => {
    const output = createBufferedDestination({ fd: pipe.writeFd, maxBufferBytes, maxDelayMs: 10 });
    destination = output;
    const logger = createLogger({ destination: output });
    output.reportDropsTo(logger);
    let logged = 0;
    const logDecisions = (count: number) => {
      for (let i = 0; i < count; i++) {
        logger.info({ event: 'decision', n: ++logged, padding: 'x'.repeat(300) }, 'decision');
      }
    };

    // In batches, the event loop turning in between: the pipe fills (64 KiB), then the destination.
    await waitUntil(
      () => {
        logDecisions(20);
        return output.droppedLines;
      },
      (dropped) => dropped > 0,
      { timeoutMs: 10_000, intervalMs: 5, what: 'the first dropped line' }, // a guard, not a measure
    );
    logDecisions(1000); // some 400 KB more: what an unbounded buffer would hold on to

    // What reaches the pipe after this read, made in one synchronous step, is what the destination held.
    const before = pipe.readNow();
    const afterChunks: Buffer[] = [];
    const after = await waitUntil(
      () => {
        afterChunks.push(pipe.readNow());
        return Buffer.concat(afterChunks).toString('utf8');
      },
      (text) => text.includes(`"event":"${LOG_LINES_DROPPED_EVENT}"`) && text.endsWith('\n'),
      { timeoutMs: 10_000, intervalMs: 10, what: 'the log_lines_dropped line' },
    );
    const reportStart = after.lastIndexOf('\n', after.length - 2) + 1;
    const held = Buffer.byteLength(after.slice(0, reportStart));
    expect(held).toBeLessThanOrEqual(maxBufferBytes);
    // Full: the bound, less one write the pipe may have taken before its callback came, and a line.
    expect(held).toBeGreaterThan(maxBufferBytes - 16 * 1024 - 1024);

    const lines = parse(before.toString('utf8') + after);
    const decisions = lines.filter((line) => line['event'] === 'decision');
    const reports = lines.filter((line) => line['event'] === LOG_LINES_DROPPED_EVENT);
    expect(decisions.length + output.droppedLines).toBe(logged);
    const numbers = decisions.map((line) => line['n'] as number);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(reports).toHaveLength(1);
    expect(lines.at(-1)).toBe(reports[0]);
    expect(reports[0]).toMatchObject({ level: 40, dropped: output.droppedLines });
  });
});

describe('authz serve with a standard output nobody reads for a while', () => {
  beforeAll(() => {
    if (!existsSync(CLI_BUILDS.full)) throw new Error(missingBuild(CLI_BUILDS.full));
  });

  it('counts the log lines it drops in /metrics, and logs how many once standard output is read again', async () => {
    const key = await generateTestKey('stall-key');
    const jwksFile = await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
    const policyFile = await writeTextFile(temp.dir, 'policy.yaml', policyYaml({ keys: { jwksFile } }));
    const run = startCli(
      ['serve', '--policy', policyFile, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      { cwd: temp.dir },
    );
    const port = (await waitForStarted(run))['port'] as number;
    const [metricsLine] = await waitUntil(
      () => run.logLines().filter((line) => line['event'] === 'metrics_started'),
      (lines) => lines.length === 1,
      { timeoutMs: 10_000, what: 'the metrics_started line' },
    );
    const metricsUrl = `http://127.0.0.1:${String(metricsLine!['port'])}/metrics`;
    const droppedInMetrics = async () => {
      const text = await (await fetch(metricsUrl)).text();
      return Number(/^authz_log_lines_dropped_total (\d+)$/m.exec(text)?.[1]);
    };
    expect(await droppedInMetrics()).toBe(0);

    // From here, nothing reads the child's standard output once the pipe and this side's buffer are full.
    run.child.stdout!.pause();
    const connections = Array.from({ length: 4 }, () => openSeparateConnection(port));
    let sent = 0;
    try {
      // Denials (always logged: no route, 403) with the longest path and request id a decision line keeps
      // (512 and 128 characters), about 1 KB a line: some 9,000 fill the 8 MiB the process holds.
      const denials = (count: number) =>
        Promise.all(
          connections.flatMap((connection) =>
            Array.from({ length: count }, () => {
              const id = `stall-${++sent}-`.padEnd(128, 'i');
              return connection
                .check(httpCheckRequest({ id, method: 'POST', path: `/${'p'.repeat(600)}` }))
                .then(outcomeOf);
            }),
          ),
        );
      await waitUntil(
        async () => {
          expect(new Set(await denials(100))).toEqual(new Set(['deny 403']));
          return droppedInMetrics();
        },
        (dropped) => dropped > 0,
        { timeoutMs: 60_000, what: 'authz_log_lines_dropped_total above 0' }, // a guard, not a measure
      );
    } finally {
      for (const connection of connections) connection.close();
    }
    // Every Check has been answered, so every line has been logged or dropped: the count is final.
    const dropped = await droppedInMetrics();

    run.child.stdout!.resume();
    await waitUntil(
      () => run.stdout().includes(`"event":"${LOG_LINES_DROPPED_EVENT}"`),
      (seen) => seen,
      { timeoutMs: 10_000, intervalMs: 100, what: 'the log_lines_dropped line' },
    );
    const finished = await stopCli(run);

    expect(finished.code).toBe(0);
    const lines = run.logLines(); // parses every line: a cut or merged line fails here
    const decisions = lines.filter((line) => line['event'] === 'decision');
    expect(decisions.length + dropped).toBe(sent);
    expect(lines.filter((line) => line['event'] === LOG_LINES_DROPPED_EVENT)).toEqual([
      expect.objectContaining({ level: 40, dropped }),
    ]);
    expect(lines.at(-1)).toMatchObject({ event: 'stopped' });
  });
});
