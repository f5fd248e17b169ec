import type { FaultProfile } from './fault-profile.js';
import type { ScenarioResult } from './figures.js';

/** What every scenario runs with. */
export interface FaultContext {
  readonly profile: FaultProfile;
  /** The checkout whose built CLI (`dist/cli/main.js`) runs `authz serve` and `authz bank`. */
  readonly target: string;
  /** Prints a progress line (stderr under `npm run faults`). */
  progress(message: string): void;
}

/** One fault scenario: a record of the scenario table (faults/scenarios.ts). */
export interface Scenario {
  /** 1 to 6, as in docs/reliability.md. */
  readonly number: number;
  /** Short, for the summary table. */
  readonly title: string;
  /** What must hold, as a sentence: the short suite's test names. */
  readonly requirement: string;
  run(context: FaultContext): Promise<ScenarioResult>;
}

/** The `authorization` header for `token`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
