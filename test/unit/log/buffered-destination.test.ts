import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as FileSystemModule from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BUFFERED_DESTINATION_DEFAULTS,
  createBufferedDestination,
  LOG_LINES_DROPPED_EVENT,
  type BufferedDestination,
  type BufferedDestinationOptions,
} from '../../../src/log/buffered-destination.js';
import { createLogger } from '../../../src/log/create-logger.js';
import { waitUntil } from '../../kit/wait-until.js';

/*
 * The destination `authz serve` logs through, writing to a file: decision lines wait until a few KiB have
 * gathered or a short delay has passed, other lines go out at once, flush() / flushSync() write
 * everything gathered, and what it holds is bounded (an output that stops reading for a while is in
 * test/integration/log-output-stall.test.ts: a pipe needs a second process).
 */

type FileSystem = typeof FileSystemModule;

/** node:fs as sonic-boom sees it (`require`), so that its writes can be watched. */
const fs = createRequire(import.meta.url)('node:fs') as FileSystem;

let dir: string;
let file: string;
let fd: number;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'authz-log-'));
  file = path.join(dir, 'log.jsonl');
  fd = openSync(file, 'a');
});

/** The destinations a test made: flushed (nothing left in flight) before their file is closed. */
const made: BufferedDestination[] = [];
const create = (options: BufferedDestinationOptions) => {
  const destination = createBufferedDestination(options);
  made.push(destination);
  return destination;
};

afterEach(async () => {
  for (const destination of made.splice(0)) await destination.flush();
  closeSync(fd);
  await rm(dir, { recursive: true, force: true });
});

const written = () => readFileSync(file, 'utf8');
const parsedLines = () =>
  written()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('createBufferedDestination', () => {
  it('keeps lines back until flush(), which resolves once every line is written', async () => {
    const destination = create({ fd, maxDelayMs: 60_000 });
    const logger = createLogger({ destination });
    logger.info({ event: 'decision', n: 1 }, 'decision');
    logger.info({ event: 'decision', n: 2 }, 'decision');
    await new Promise((resolve) => setImmediate(resolve));
    expect(written()).toBe('');

    await destination.flush();
    expect(parsedLines().map((line) => line['n'])).toEqual([1, 2]);
  });

  it('writes a decision line on its own after maxDelayMs when traffic is light', async () => {
    const destination = create({ fd, maxDelayMs: 20 });
    createLogger({ destination }).info({ event: 'decision', n: 1 }, 'decision');
    await waitUntil(parsedLines, (lines) => lines.length === 1, {
      timeoutMs: 10_000, // a deadline for a loaded machine, not a measure
      intervalMs: 10,
      what: 'the line',
    });
  });

  it('writes the lines gathered during a write once it ends, when their delay ran out meanwhile', async () => {
    // A burst, then quiet: the burst's first KiB goes out in a write the output is slow to take; a line
    // logged meanwhile waits; its delay runs out during that write (flush() can do nothing then). Once the
    // write ends it must go out, not wait for the next line to arm a timer (found by the e2e suite: a quiet
    // server held a burst's last decision lines until the next request).
    const held: { args?: unknown[] } = {};
    const original = fs.write;
    const spy = vi.spyOn(fs, 'write').mockImplementationOnce(((...args: unknown[]) => {
      held.args = args;
    }) as typeof fs.write);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const destination = create({ fd, bufferBytes: 1024, maxDelayMs: 20 });
      const logger = createLogger({ destination });
      let n = 0;
      while (held.args === undefined) {
        logger.info({ event: 'decision', n: ++n, padding: 'x'.repeat(150) }, 'decision');
      }
      // The first KiB is in a write, held; one line more waits, under bufferBytes.
      logger.info({ event: 'decision', n: ++n }, 'decision');
      vi.advanceTimersByTime(20); // the delay runs out while that write is in flight
      vi.useRealTimers();
      (original as (...args: unknown[]) => void)(...held.args); // the output takes the write
      await waitUntil(parsedLines, (lines) => lines.length === n, {
        timeoutMs: 10_000, // a deadline for a loaded machine, not a measure
        intervalMs: 10,
        what: 'every line, the one logged during the write included',
      });
      expect(parsedLines().map((line) => line['n'])).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(spy).toHaveBeenCalledTimes(2); // the held write, then the waiting line's
    } finally {
      vi.useRealTimers();
      spy.mockRestore();
    }
  });

  it('writes every other line at once, after the decision lines logged before it', async () => {
    const destination = create({ fd, maxDelayMs: 60_000 });
    const logger = createLogger({ destination });
    logger.info({ event: 'decision', n: 1 }, 'decision');
    logger.info({ event: 'decision', n: 2 }, 'decision');
    logger.info({ event: 'health', status: 'SERVING' }, 'health SERVING');
    const lines = await waitUntil(parsedLines, (lines) => lines.length === 3, {
      timeoutMs: 10_000, // a deadline for a loaded machine, not a measure
      intervalMs: 10,
      what: 'the three lines',
    });
    expect(lines.map((line) => line['event'])).toEqual(['decision', 'decision', 'health']);
  });

  it('writes as soon as bufferBytes have gathered, in whole lines, without waiting for the delay', async () => {
    const destination = create({ fd, bufferBytes: 1024, maxDelayMs: 60_000 });
    const logger = createLogger({ destination });
    for (let n = 1; n <= 40; n++) logger.info({ event: 'decision', n, padding: 'x'.repeat(100) }, 'decision');
    await waitUntil(parsedLines, (lines) => lines.length >= 8, {
      timeoutMs: 10_000, // a deadline for a loaded machine, not a measure
      intervalMs: 10,
      what: 'the first KiB of lines',
    });
    expect(written().endsWith('\n')).toBe(true);

    destination.flushSync();
    expect(parsedLines().map((line) => line['n'])).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it.each([
    [{ bufferBytes: 0 }],
    [{ bufferBytes: 1.5 }],
    [{ bufferBytes: 16_384 }],
    [{ bufferBytes: 4096, shared: true }],
  ])('refuses %j: gathered lines must fit in one write', (options) => {
    expect(() => createBufferedDestination({ fd, ...options })).toThrow(RangeError);
  });

  it('writes at most 4 KiB at a time, each write whole lines, when other processes share the output', async () => {
    // sonic-boom writes with fs.write (and fs.writeSync when flushing synchronously): watched, not replaced.
    const spies = [vi.spyOn(fs, 'write'), vi.spyOn(fs, 'writeSync')];
    try {
      const destination = create({ fd, shared: true, maxDelayMs: 60_000 });
      const logger = createLogger({ destination });
      for (let n = 1; n <= 60; n++)
        logger.info({ event: 'decision', n, padding: 'é'.repeat(150) }, 'decision');
      await destination.flush();
      const calls = spies.flatMap((spy): readonly (readonly unknown[])[] => spy.mock.calls);
      const writes = calls
        .filter((call) => call[0] === fd)
        .map((call) => String(call[1]))
        .filter((chunk) => chunk !== '');

      expect(writes.length).toBeGreaterThan(5);
      for (const chunk of writes) {
        expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(4096);
        expect(chunk.endsWith('\n')).toBe(true);
      }
      expect(parsedLines().map((line) => line['n'])).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('refuses a maxDelayMs that is not positive', () => {
    expect(() => createBufferedDestination({ fd, maxDelayMs: 0 })).toThrow(RangeError);
  });

  it.each([
    [{ maxBufferBytes: 32_767 }],
    [{ maxBufferBytes: 8191, shared: true }],
    [{ maxBufferBytes: 65_536.5 }],
    [{ maxBufferBytes: Number.NaN }],
  ])('refuses %j: the bound must hold a write in flight and one gathering', (options) => {
    expect(() => createBufferedDestination({ fd, ...options })).toThrow(/maxBufferBytes/);
  });

  it('holds at most 8 MiB by default', () => {
    expect(BUFFERED_DESTINATION_DEFAULTS.maxBufferBytes).toBe(8 * 1024 * 1024);
  });
});

describe('createBufferedDestination: the bound on what it holds', () => {
  const maxBufferBytes = 32 * 1024; // 32 KiB, the least allowed: filled by some 90 lines
  const padding = 'x'.repeat(300);

  /**
   * Nothing the destination holds is handed back before the event loop turns (sonic-boom's write ends in a
   * callback), so a burst logged in one go is an output that does not keep up, deterministically: what the
   * burst may add is the bound, whatever the speed of the file.
   */
  const burst = (destination: BufferedDestination, count: number) => {
    const logger = createLogger({ destination });
    destination.reportDropsTo(logger);
    for (let n = 1; n <= count; n++) logger.info({ event: 'decision', n, padding }, 'decision');
    return logger;
  };

  it('drops, whole, each line that would take it past maxBufferBytes, counts them, and says how many once the output has caught up', async () => {
    const destination = create({ fd, maxBufferBytes, maxDelayMs: 10 });
    burst(destination, 300); // about 120 KB, nearly four times the bound

    const dropped = destination.droppedLines;
    expect(dropped).toBeGreaterThan(200);
    const lines = await waitUntil(
      parsedLines,
      (lines) => lines.some((line) => line['event'] === LOG_LINES_DROPPED_EVENT),
      {
        timeoutMs: 10_000, // a deadline for a loaded machine, not a measure
        intervalMs: 10,
        what: 'the log_lines_dropped line',
      },
    );
    const decisions = lines.filter((line) => line['event'] === 'decision');
    // Every line was either written, whole, or counted; the written ones are the first, in order.
    expect(decisions.map((line) => line['n'])).toEqual(
      Array.from({ length: 300 - dropped }, (_, i) => i + 1),
    );
    const text = written();
    const decisionBytes = Buffer.byteLength(text.slice(0, text.lastIndexOf('\n', text.length - 2) + 1));
    expect(decisionBytes).toBeLessThanOrEqual(maxBufferBytes);
    expect(decisionBytes).toBeGreaterThan(maxBufferBytes - 1024); // filled up to the bound, less a line
    expect(lines.at(-1)).toMatchObject({
      level: 40,
      event: LOG_LINES_DROPPED_EVENT,
      dropped,
      msg: `${dropped} log lines dropped: the output did not take them fast enough`,
    });
    const report = lines.at(-1)!;
    expect(Date.parse(report['since'] as string)).toBeLessThanOrEqual(Date.parse(report['time'] as string));
  });

  it('says it once per run of drops, counting only the lines dropped since the last time it said it', async () => {
    const destination = create({ fd, maxBufferBytes, maxDelayMs: 10 });
    const reports = async (count: number) =>
      (
        await waitUntil(
          parsedLines,
          (lines) => lines.filter((line) => line['event'] === LOG_LINES_DROPPED_EVENT).length === count,
          { timeoutMs: 10_000, intervalMs: 10, what: `${count} log_lines_dropped lines` },
        )
      ).filter((line) => line['event'] === LOG_LINES_DROPPED_EVENT);

    const logger = burst(destination, 200);
    const first = destination.droppedLines;
    await reports(1);
    for (let n = 1; n <= 150; n++) logger.info({ event: 'decision', n, padding }, 'decision');
    const [, second] = await reports(2);

    expect(second).toMatchObject({ dropped: destination.droppedLines - first });
    expect(destination.droppedLines - first).toBeGreaterThan(0);
    await destination.flush();
    const reported = parsedLines().filter((line) => line['event'] === LOG_LINES_DROPPED_EVENT);
    expect(reported).toHaveLength(2);
  });

  it('writes the count, last, in flush(), and resolves with no write left in flight', async () => {
    // A slow output: each asynchronous write (sonic-boom's fs.write) ends a few milliseconds after the file
    // took it. A write still in flight when flush() resolves would be lost to the process.exit() after it.
    const original = fs.write;
    let inFlight = 0;
    const spy = vi.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
      const done = args.pop() as (...result: unknown[]) => void;
      inFlight += 1;
      return (original as (...args: unknown[]) => void)(...args, (...result: unknown[]) =>
        setTimeout(() => {
          inFlight -= 1;
          done(...result);
        }, 5),
      );
    }) as typeof fs.write);
    const destination = create({ fd, maxBufferBytes, maxDelayMs: 60_000 });
    try {
      burst(destination, 300);
      await destination.flush();
      expect(inFlight).toBe(0);
    } finally {
      spy.mockRestore();
    }

    const lines = parsedLines();
    expect(lines.filter((line) => line['event'] === LOG_LINES_DROPPED_EVENT)).toHaveLength(1);
    expect(lines.at(-1)).toMatchObject({ event: LOG_LINES_DROPPED_EVENT, dropped: destination.droppedLines });
    expect(lines.length - 1 + destination.droppedLines).toBe(300);
  });

  it('counts what it drops before a logger to report them is given, and logs nothing itself', async () => {
    const destination = create({ fd, maxBufferBytes, maxDelayMs: 10 });
    const logger = createLogger({ destination });
    for (let n = 1; n <= 300; n++) logger.info({ event: 'decision', n, padding }, 'decision');
    await destination.flush();

    expect(destination.droppedLines).toBeGreaterThan(200);
    expect(parsedLines()).toHaveLength(300 - destination.droppedLines);
  });
});
