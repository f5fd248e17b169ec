import { afterEach } from 'vitest';

/**
 * Registers an afterEach hook that runs what the test deferred, last deferred first, and returns the
 * function that defers: servers, connections and processes a test started end with it, passed or failed.
 */
export function cleanupAfterEach(): (cleanup: () => unknown) => void {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => void cleanups.push(cleanup);
}
