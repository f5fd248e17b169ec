import { describe, expect, it } from 'vitest';
import { faultProfile } from '../../faults/fault-profile.js';
import { failedChecks } from '../../faults/figures.js';
import { scenariosOf } from '../../faults/scenarios.js';
import { repoRoot } from '../kit/process.js';

// The fault suite of `npm run faults` (faults/, docs/reliability.md) in its short profile, through real
// Envoy, the built `authz serve` and `authz bank`, and a JWKS endpoint with faults on demand, at 100
// requests/s, with shorter faults (the JWKS endpoint hangs for 4 s instead of 60, the unknown-kid flood
// lasts 6 s instead of 60) and 10 policy flips instead of 100 (each path still taken: both valid versions,
// invalid ones, SIGHUP and the file watch). Every scenario but the soak (5): a leak needs minutes to show,
// so the soak runs in the full profile only (`npm run faults`); its other claim, no request failed under
// load while keys refresh, scenarios 1, 2 and 7 check for their own traffic. The requirements are the full
// suite's own checks; each scenario's line of figures is printed. About 90 s on 2 cores.

const profile = faultProfile('short');

describe('faults through real Envoy (npm run faults, short profile)', () => {
  for (const scenario of scenariosOf(profile)) {
    it(`${scenario.number}. ${scenario.requirement}`, { timeout: 120_000 }, async () => {
      const result = await scenario.run({ profile, target: repoRoot, progress: () => undefined });
      console.log(`S${result.number} ${result.title}: ${result.line}`);
      expect(failedChecks(result)).toEqual([]);
    });
  }
});
