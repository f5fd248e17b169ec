import { setTimeout as delay } from 'node:timers/promises';

/**
 * Calls `probe` every `intervalMs` until `accept` approves its value, and returns that value. A functional
 * deadline, not a measurement: on timeout it throws with `what` and the last value seen.
 */
export async function waitUntil<T>(
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  { timeoutMs, intervalMs = 50, what }: { timeoutMs: number; intervalMs?: number; what: string },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms (last seen: ${JSON.stringify(value)})`);
    }
    await delay(intervalMs);
  }
}
