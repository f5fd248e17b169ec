import { describe, expect, it } from 'vitest';
import { faultProfile } from '../../faults/fault-profile.js';
import { failedChecks } from '../../faults/figures.js';
import { SCENARIOS } from '../../faults/scenarios.js';
import { repoRoot } from './envoy-binary.js';

// The fault suite of `npm run faults` (faults/, docs/reliability.md) in its short profile: every scenario,
// through real Envoy, the built `authz serve` and `authz bank`, and a JWKS endpoint with faults on demand,
// at 100 requests/s, with shorter faults (the JWKS endpoint hangs for 4 s instead of 60, the soak lasts
// 30 s instead of 10 minutes, the flood 12 s). The requirements are the full suite's own checks; each
// scenario's line of figures is printed. About 2 minutes on 2 cores.

const profile = faultProfile('short');

describe('faults through real Envoy (npm run faults, short profile)', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.number}. ${scenario.requirement}`, { timeout: 120_000 }, async () => {
      const result = await scenario.run({ profile, target: repoRoot, progress: () => undefined });
      console.log(`S${result.number} ${result.title}: ${result.line}`);
      expect(failedChecks(result)).toEqual([]);
    });
  }
});
