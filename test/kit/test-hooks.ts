import { afterAll, afterEach, beforeAll } from 'vitest';
import { createTempDir } from './authz-harness.js';
import { killAllProcesses } from './process.js';

/* The vitest hooks the integration tests share: a folder for a file's tests, and cleanups after each test. */

/**
 * A temporary folder for the tests of this file or describe block: made before them (beforeAll), and
 * removed after them (afterAll) once every process the kit started is killed, as one may still write there.
 */
export function suiteTempDir(prefix: string): { readonly dir: string } {
  let temp: { dir: string; remove: () => Promise<void> } | undefined;
  beforeAll(async () => {
    temp = await createTempDir(prefix);
  });
  afterAll(async () => {
    killAllProcesses();
    await temp?.remove();
  });
  return {
    get dir(): string {
      if (temp === undefined) throw new Error(`${prefix}: the folder is made in beforeAll, not yet`);
      return temp.dir;
    },
  };
}

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
