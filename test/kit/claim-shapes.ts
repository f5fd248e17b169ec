import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { repoRoot } from './process.js';

/**
 * The token shapes docs/policy.md's "Claim shapes by provider" rests on: a real token of each provider run
 * in this suite, recorded in `test/fixtures/claim-shapes/NAME.json` (`header`, `claims`), and checked
 * against the running provider by its e2e suite, so that a provider's new version that changes the shape
 * fails a test instead of the docs going stale.
 */
export interface RecordedToken {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

export async function recordedToken(name: string): Promise<RecordedToken> {
  const file = path.join(repoRoot, 'test', 'fixtures', 'claim-shapes', `${name}.json`);
  return JSON.parse(await readFile(file, 'utf8')) as RecordedToken;
}

/**
 * Each member's name and JSON type, nested objects by their own shape: what a policy's claim settings
 * depend on, not the values (times, ids, keys).
 */
export function claimShape(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value)
      .map(([name, member]): [string, unknown] => [
        name,
        Array.isArray(member)
          ? 'array'
          : typeof member === 'object' && member !== null
            ? claimShape(member as Record<string, unknown>)
            : typeof member,
      ])
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}
