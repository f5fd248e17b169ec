import { pino, type Logger } from 'pino';

/** A logger writing into memory, and what it wrote. */
export interface MemoryLogger {
  readonly logger: Logger;
  /** Every line written, as text. */
  readonly lines: string[];
  /** Every line written, parsed. */
  records(): Record<string, unknown>[];
}

/**
 * A plain pino logger at level info (no redaction: tests check what the code logs, not the safety net)
 * writing into memory, so a test can look for events and for secrets that must never appear.
 */
export function memoryLogger(): MemoryLogger {
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write: (chunk: string) => {
        for (const line of chunk.split('\n')) if (line !== '') lines.push(line);
      },
    },
  );
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}
