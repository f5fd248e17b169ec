import { dpopProof, type DpopKey } from '../test/kit/dpop-proofs.js';
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
  /** 1 to 7, as in docs/reliability.md. */
  readonly number: number;
  /** Short, for the summary table. */
  readonly title: string;
  /** What must hold, as a sentence: the short suite's test names. */
  readonly requirement: string;
  /** Whether `profile` runs this scenario; every profile does when absent (scenarios.ts, `scenariosOf`). */
  runsIn?(profile: FaultProfile): boolean;
  run(context: FaultContext): Promise<ScenarioResult>;
}

/** The `authorization` header for `token`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/**
 * `Authorization: DPoP <token>` and a fresh proof from `key` for `method` and `url` (RFC 9449 sections 4
 * and 7.1), as the demo policy's `POST /transfer` requires: a new `jti` and the current time each call, so
 * build it for the request about to leave. `token` must be bound to `key` (`cnf.jkt`, see
 * `boundTo` in fault-tokens.ts).
 */
export async function dpop(
  key: DpopKey,
  method: string,
  url: string,
  token: string,
): Promise<Record<string, string>> {
  return { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { method, url, accessToken: token }) };
}
