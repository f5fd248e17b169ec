import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/create-logger.js';
import { decisionLogger } from '../../../src/log/decision-log.js';

/*
 * Decision lines skip pino's redaction (its cost per line is four times the line's own), which is safe only
 * because they are built from a closed set of fields; the process logger they come from keeps redacting.
 */

function loggerIntoMemory() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    destination: { write: (chunk: string) => void lines.push(JSON.parse(chunk) as Record<string, unknown>) },
  });
  return { logger, lines };
}

describe('decisionLogger', () => {
  it('writes lines as given, with the process logger’s level, base fields and time', () => {
    const { logger, lines } = loggerIntoMemory();
    decisionLogger(logger).info({ event: 'decision', decision: 'allow', route: 'balance' }, 'decision');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      service: 'authz',
      event: 'decision',
      decision: 'allow',
      route: 'balance',
      msg: 'decision',
    });
    expect(typeof lines[0]!['time']).toBe('string');
  });

  it('leaves the process logger’s redaction in place for every other line', () => {
    const { logger, lines } = loggerIntoMemory();
    decisionLogger(logger);
    logger.info({ headers: { authorization: 'Bearer secret' }, token: 'secret' }, 'other');
    expect(JSON.stringify(lines)).not.toContain('secret');
    expect(lines[0]).toMatchObject({ token: '[redacted]', headers: { authorization: '[redacted]' } });
  });
});
