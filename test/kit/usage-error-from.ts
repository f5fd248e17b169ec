import { expect } from 'vitest';
import { UsageError } from '../../src/args/usage-error.js';

/** The UsageError `run` throws; fails the test if it returns or throws anything else. */
export function usageErrorFrom(run: () => unknown): UsageError {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(UsageError);
  expect(thrown).toMatchObject({ code: 'ERR_USAGE', name: 'UsageError' });
  return thrown as UsageError;
}
