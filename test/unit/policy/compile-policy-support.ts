import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { PolicyError, type PolicyErrorCode, type PolicyProblem } from '../../../src/policy/policy-error.js';

// What the compile-policy-*.test.ts and load-policy.test.ts files share: policy texts and PolicyError assertions.

/** The folder of policy fixtures (test/fixtures/policies/). */
export const FIXTURES = fileURLToPath(new URL('../../fixtures/policies/', import.meta.url));

// The policy the inline cases start from. Line 1 `version`, 2 `realm`, 3 `issuers:`, the issuer block
// from line 4 (issuer 4, audiences 5, jwks_uri 6, algorithms 7, extra keys 8...), then `routes:` and
// one route per line: with the default issuer block, `routes:` is line 8 and routes[i] is line 9 + i.
export const ISSUER = [
  '  - issuer: https://idp.example/',
  '    audiences: [https://my-banking-api]',
  '    jwks_uri: https://idp.example/.well-known/jwks.json',
  '    algorithms: [RS256]',
];
export const PUBLIC_ROUTE = '  - { path: /healthz, public: true }';

export function policyText(parts: { head?: string[]; issuers?: string[]; routes?: string[] } = {}): string {
  const head = parts.head ?? ['version: 1', 'realm: bank-api'];
  return [...head, 'issuers:', ...(parts.issuers ?? ISSUER), 'routes:', ...(parts.routes ?? [PUBLIC_ROUTE])]
    .join('\n')
    .concat('\n');
}

/** The PolicyError `compile` throws; fails the test if it returns or throws anything else. */
export function policyErrorFrom(compile: () => unknown): PolicyError {
  let thrown: unknown;
  try {
    compile();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(PolicyError);
  return thrown as PolicyError;
}

/** The PolicyError `load` rejects with; fails the test if it resolves or rejects with anything else. */
export async function policyErrorFromAsync(load: () => Promise<unknown>): Promise<PolicyError> {
  const thrown: unknown = await load().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(thrown).toBeInstanceOf(PolicyError);
  return thrown as PolicyError;
}

/** Asserts `error` has `code` and exactly one problem, in policy.yaml at the expected line and path. */
export function expectSingleProblem(
  error: PolicyError,
  code: PolicyErrorCode,
  expected: { line: number; path: string; message: string | RegExp },
): PolicyProblem {
  expect(error.code).toBe(code);
  expect(error.problems).toHaveLength(1);
  const [problem] = error.problems as [PolicyProblem];
  expect(problem.file).toBe('policy.yaml');
  expect(problem.line).toBe(expected.line);
  expect(problem.path).toBe(expected.path);
  if (typeof expected.message === 'string') expect(problem.message).toBe(expected.message);
  else expect(problem.message).toMatch(expected.message);
  return problem;
}
