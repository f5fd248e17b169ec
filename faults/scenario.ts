import { dpopProof, type DpopKey } from '../test/kit/dpop-proofs.js';
import type { TestKey } from '../test/kit/tokens.js';
import type { FaultProfile } from './fault-profile.js';
import {
  faultPolicy,
  startFaultStack,
  waitForAllow,
  type FaultStack,
  type IssuerSettings,
} from './fault-stack.js';
import { signToken } from './fault-tokens.js';
import type { ScenarioResult } from './figures.js';
import type { TrafficRequest } from './traffic.js';

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
  /** 1 to 8, as in docs/reliability.md. */
  readonly number: number;
  /** Short, for the summary table. */
  readonly title: string;
  /** What must hold, as a sentence: the short suite's test names. */
  readonly requirement: string;
  /** Whether `profile` runs this scenario; every profile does when absent (scenarios.ts, `scenariosOf`). */
  runsIn?(profile: FaultProfile): boolean;
  run(context: FaultContext): Promise<ScenarioResult>;
}

/** What a scenario measures: its result but for the number, title and time, which {@link defineScenario} adds. */
export type Measured = Omit<ScenarioResult, 'number' | 'title' | 'seconds'>;

/** The scenario that runs `measure` and reports it under its number and title, with the seconds it took. */
export function defineScenario(definition: {
  readonly number: number;
  readonly title: string;
  readonly requirement: string;
  runsIn?(profile: FaultProfile): boolean;
  measure(context: FaultContext): Promise<Measured>;
}): Scenario {
  const { measure, ...scenario } = definition;
  return {
    ...scenario,
    run: async (context) => {
      const started = Date.now();
      const measured = await measure(context);
      return {
        number: scenario.number,
        title: scenario.title,
        ...measured,
        seconds: (Date.now() - started) / 1000,
      };
    },
  };
}

/**
 * Starts a fault stack (fault-stack.ts) of `target`: its key set publishes `key` alone, its policy is the
 * suite's (`faultPolicy`) with `issuer`'s key-set settings, then `amendPolicy`'s changes. Waits until a
 * token of `key` is allowed through Envoy (authz has the keys), runs `measure` on it, and stops the stack
 * whatever happens.
 */
export async function withFaultStack<T>(
  options: {
    target: string;
    key: TestKey;
    issuer: IssuerSettings;
    amendPolicy?: (policy: Record<string, unknown>) => Record<string, unknown>;
  },
  measure: (stack: FaultStack) => Promise<T>,
): Promise<T> {
  const { amendPolicy = (policy) => policy } = options;
  const stack = await startFaultStack({
    target: options.target,
    keys: [options.key.publicJwk],
    policy: async (endpoints) => amendPolicy(await faultPolicy(endpoints, options.issuer)),
  });
  try {
    await waitForAllow(stack, `Bearer ${await signToken(options.key)}`);
    return await measure(stack);
  } finally {
    await stack.stop();
  }
}

/** The `authorization` header for `token`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** `GET /balance`, recorded as `kind`, with `token` as a bearer token (without one when undefined). */
export function balanceRead(kind: string, token: string | undefined, tag?: string): TrafficRequest {
  return { kind, tag, method: 'GET', path: '/balance', headers: token === undefined ? {} : bearer(token) };
}

/**
 * `request` under the DPoP scheme (RFC 9449 sections 4 and 7.1), as the demo policy's `POST /transfer`
 * requires: `Authorization: DPoP <token>` and a fresh proof from `key` for its method and `origin` plus its
 * path, a new `jti` and the current time each call, so build it for the request about to leave. `token`
 * must be bound to `key` (`cnf.jkt`, see `boundTo` in fault-tokens.ts).
 */
export async function dpopRequest(
  origin: string,
  key: DpopKey,
  token: string,
  request: Omit<TrafficRequest, 'headers'>,
): Promise<TrafficRequest> {
  const proof = await dpopProof(key, {
    method: request.method,
    url: `${origin}${request.path}`,
    accessToken: token,
  });
  return { ...request, headers: { authorization: `DPoP ${token}`, dpop: proof } };
}
