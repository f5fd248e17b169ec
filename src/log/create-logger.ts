import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

/**
 * Paths pino censors wherever they appear. Nothing logs tokens or headers on purpose; this is the net
 * under that rule, compiled once by pino at construction (not per line).
 */
const REDACT_PATHS = [
  'token',
  'authorization',
  'headers.authorization',
  '*.token',
  '*.authorization',
  '*.headers.authorization',
];

/** The process logger: JSON lines on stdout (or `destination`), level from the caller's configuration. */
export function createLogger(
  options: { level?: LevelWithSilent; destination?: DestinationStream } = {},
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'authz' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
