import { createHash } from 'node:crypto';

/**
 * A policy's version: the first 16 hex digits of the SHA-256 of its text (as decoded from UTF-8, so a
 * leading byte order mark does not count). The same text is the same policy; every decision log line
 * names the version it was decided under.
 */
export function policyVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
