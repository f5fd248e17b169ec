import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseJsonLines, startProcess, type KitProcess } from '../kit/process.js';
import { suiteTempDir } from '../kit/test-hooks.js';

/*
 * The test kit's process runner (test/kit/process.ts), on `node -e` children: what it reads of their
 * output, how its waits end, and how it stops a process that does not want to stop.
 */

const temp = suiteTempDir('authz-kit-process-');

/** `node -e SCRIPT`, its output piped unless `logFile` is given. */
function node(
  script: string,
  options: { keepBytes?: number; keepLogLines?: number; logFile?: string } = {},
): KitProcess {
  return startProcess({ name: 'node -e', command: process.execPath, args: ['-e', script], ...options });
}

/** A script that runs `body`, then waits (for a signal, or for stdin never to come) without exiting. */
const thenWait = (body: string) => `${body}; setInterval(() => undefined, 1000);`;

describe('the process runner (test/kit/process.ts)', () => {
  it('parses the JSON lines of stdout, a line written in halves once whole, and skips other lines', async () => {
    const run = node(
      thenWait(`
        process.stdout.write('{"event":"first","n":1}\\nnot json\\n{"event":"ha');
        setTimeout(() => process.stdout.write('lf","n":2}\\n'), 300);
      `),
    );
    try {
      const half = await run.logLine((line) => line['event'] === 'half', 'the line written in halves');
      expect(half).toEqual({ event: 'half', n: 2 });
      expect(run.logLines()).toEqual([
        { event: 'first', n: 1 },
        { event: 'half', n: 2 },
      ]);
      expect(run.stdout()).toContain('not json\n');
    } finally {
      await run.stop();
    }
  });

  it('logLine finds a line printed before it was called; nextLogLine waits for a later one', async () => {
    const run = node(
      thenWait(`
        process.on('SIGUSR2', () => console.log(JSON.stringify({ event: 'tick', n: 2 })));
        console.log(JSON.stringify({ event: 'tick', n: 1 })); // after the handler: the signal may follow at once
      `),
    );
    try {
      const tick = (line: Record<string, unknown>) => line['event'] === 'tick';
      expect(await run.logLine(tick, 'the first tick')).toEqual({ event: 'tick', n: 1 });
      const next = run.nextLogLine(tick, 'a later tick', 10_000);
      run.signal('SIGUSR2');
      expect(await next).toEqual({ event: 'tick', n: 2 });
    } finally {
      await run.stop();
    }
  });

  it('with keepLogLines 0 keeps no line, and a wait still sees the lines printed while it waits', async () => {
    const run = node(
      thenWait(`
        process.on('SIGUSR2', () => console.log(JSON.stringify({ event: 'heard' })));
        console.log(JSON.stringify({ event: 'ready' }));
      `),
      { keepLogLines: 0 },
    );
    try {
      await run.logLine((line) => line['event'] === 'ready', 'the ready line');
      const heard = run.nextLogLine((line) => line['event'] === 'heard', 'the line printed while waiting');
      run.signal('SIGUSR2');
      expect(await heard).toEqual({ event: 'heard' });
      expect(run.logLines()).toEqual([]);
      expect(run.stdout()).toBe('{"event":"ready"}\n{"event":"heard"}\n');
    } finally {
      await run.stop();
    }
  });

  it('fails a wait with the tail of the output when the process exits first', async () => {
    const run = node(`console.log('the last words'); console.error('on stderr too'); process.exit(3);`);
    const waiting = run.logLine((line) => line['event'] === 'never', 'a line that never comes');
    await expect(waiting).rejects.toThrow(/exited \(exit 3\) before a line that never comes/);
    await expect(waiting).rejects.toThrow(/the last words\n[\s\S]*on stderr too/);
    expect(await run.finished).toEqual({
      code: 3,
      signal: null,
      stdout: 'the last words\n',
      stderr: 'on stderr too\n',
    });
    expect(run.exitReason()).toBe('exit 3');
  });

  it('stops a process that ignores SIGTERM with SIGKILL after killAfterMs', async () => {
    const run = node(
      thenWait(`
        process.on('SIGTERM', () => console.log('SIGTERM ignored'));
        console.log(JSON.stringify({ event: 'ready' }));
      `),
    );
    await run.logLine((line) => line['event'] === 'ready', 'the ready line'); // the handler is in place
    const started = Date.now();
    const finished = await run.stop(500);
    expect(finished).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(finished.stdout).toContain('SIGTERM ignored');
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(await run.stop()).toBe(finished); // a second stop: the same end
  });

  it('keeps only the newest keepBytes of stdout and of stderr', async () => {
    const run = node(
      `process.stdout.write('a'.repeat(100000) + 'END'); process.stderr.write('b'.repeat(50000) + 'TAIL');`,
      { keepBytes: 1000 },
    );
    const finished = await run.finished;
    expect(finished.stdout).toHaveLength(1000);
    expect(finished.stdout.endsWith('aEND')).toBe(true);
    expect(finished.stderr).toHaveLength(1000);
    expect(finished.stderr.endsWith('bTAIL')).toBe(true);
    expect(run.output()).toHaveLength(2000);
  });

  it('writes stdout and stderr to logFile, and reads log lines and waits from that file', async () => {
    const logFile = `${temp.dir}/node.log`;
    const run = node(
      thenWait(`
        console.log(JSON.stringify({ event: 'started', port: 1 }));
        console.error('to stderr');
        setTimeout(() => console.log(JSON.stringify({ event: 'later' })), 300);
      `),
      { logFile },
    );
    try {
      expect(await run.logLine((line) => line['event'] === 'started', 'the started line')).toEqual({
        event: 'started',
        port: 1,
      });
      await run.nextLogLine((line) => line['event'] === 'later', 'the later line');
      expect(run.logLines().map((line) => line['event'])).toEqual(['started', 'later']);
      expect(run.output()).toContain('to stderr\n');
      expect(() => run.onLogLine(() => undefined)).toThrow(/needs piped output/);
    } finally {
      await run.stop();
    }
    expect(await readFile(logFile, 'utf8')).toContain('"event":"later"');
  });

  it('parseJsonLines parses every complete line and fails on a cut or merged one', () => {
    expect(parseJsonLines('{"a":1}\n\n{"b":2}\n{"half')).toEqual([{ a: 1 }, { b: 2 }]);
    expect(() => parseJsonLines('{"a":1}{"b":2}\n')).toThrow(/not a JSON log line: \{"a":1\}\{"b":2\}/);
    expect(() => parseJsonLines('"a":1}\n')).toThrow(/not a JSON log line/);
  });
});
