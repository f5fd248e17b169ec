import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandIo } from '../../src/command/command-io.js';

/** An ops command's output, kept for assertions, with a fixed clock. */
export interface CapturedIo {
  readonly io: CommandIo;
  /** Everything written to standard output so far. */
  readonly stdout: () => string;
  /** Everything written to standard error so far. */
  readonly stderr: () => string;
}

/** 2026-11-27T12:00:00Z, the clock of the ops tests and of policy.test.yaml. */
export const OPS_NOW = Date.UTC(2026, 10, 27, 12);

/** Captures what a command writes; the clock stands at `nowMs` (default OPS_NOW). */
export function captureIo(nowMs = OPS_NOW): CapturedIo {
  let stdout = '';
  let stderr = '';
  return {
    io: {
      out: (text) => void (stdout += text),
      err: (text) => void (stderr += text),
      now: () => nowMs,
    },
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

/**
 * A repository file as a path relative to the working directory, so that the file names commands print
 * are the same on every machine (vitest runs from the repository root).
 */
export function repoFile(pathFromRoot: string): string {
  return relative(process.cwd(), fileURLToPath(new URL(`../../${pathFromRoot}`, import.meta.url)));
}
