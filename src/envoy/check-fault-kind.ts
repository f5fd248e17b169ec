/**
 * A bounded name for a fault inside a Check: its stable `code` if it has one of a sane shape, else its
 * class name. The `kind` of `authz_check_faults_total` and of the `check_failed` log line, and the status
 * message of the Check's span: never the error's message, which might quote input.
 */
export function checkFaultKind(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_]{1,48}$/.test(code)) return code;
  const name = error instanceof Error ? error.name : typeof error;
  return /^[A-Za-z0-9_]{1,48}$/.test(name) ? name : 'other';
}
