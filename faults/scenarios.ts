import type { FaultProfile } from './fault-profile.js';
import type { Scenario } from './scenario.js';
import { SCENARIO as authzRestart } from './scenarios/authz-restart.js';
import { SCENARIO as hostileClients } from './scenarios/hostile-clients.js';
import { SCENARIO as idleConnections } from './scenarios/idle-connections.js';
import { SCENARIO as jwksFaults } from './scenarios/jwks-faults.js';
import { SCENARIO as keyRotation } from './scenarios/key-rotation.js';
import { SCENARIO as policyFlips } from './scenarios/policy-flips.js';
import { SCENARIO as replayStoreFaults } from './scenarios/replay-store-faults.js';
import { SCENARIO as soak } from './scenarios/soak.js';

/** Every fault scenario, in the order `npm run faults` runs them (docs/reliability.md). */
export const SCENARIOS: readonly Scenario[] = [
  jwksFaults,
  keyRotation,
  authzRestart,
  policyFlips,
  soak,
  idleConnections,
  hostileClients,
  replayStoreFaults,
];

/** The scenarios `profile` runs, in order: the short profile has no soak (scenario 5). */
export function scenariosOf(profile: FaultProfile): readonly Scenario[] {
  return SCENARIOS.filter((scenario) => scenario.runsIn?.(profile) ?? true);
}
