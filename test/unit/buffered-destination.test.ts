import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as FileSystemModule from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createBufferedDestination,
  type BufferedDestination,
  type BufferedDestinationOptions,
} from '../../src/log/buffered-destination.js';
import { createLogger } from '../../src/log/create-logger.js';
import { waitUntil } from '../support/wait-until.js';

/*
 * The destination `authz serve` logs through, writing to a file: decision lines wait until a few KiB have
 * gathered or a short delay has passed, other lines go out at once, and flush() / flushSync() write
 * everything gathered.
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
});
