import type { LevelWithSilent } from 'pino';
import { UsageError } from './usage-error.js';

/** The log levels a command accepts (`--log-level`, `AUTHZ_LOG_LEVEL`), most severe first. */
export const LOG_LEVELS: readonly LevelWithSilent[] = Object.freeze([
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
]);

/** The level when none is given. */
export const DEFAULT_LOG_LEVEL: LevelWithSilent = 'info';

/**
 * A log level from a flag or variable; undefined gives DEFAULT_LOG_LEVEL.
 * @param source the flag or variable it came from, named in the error.
 * @throws UsageError listing the accepted levels.
 */
export function parseLogLevel(value: string | undefined, source: string): LevelWithSilent {
  if (value === undefined) return DEFAULT_LOG_LEVEL;
  if (!LOG_LEVELS.includes(value as LevelWithSilent)) {
    throw new UsageError(`${source}: "${value}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return value as LevelWithSilent;
}
