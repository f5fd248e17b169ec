/** A command line or environment setting that cannot be used; the message names the flag or variable. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'ERR_USAGE';
}
