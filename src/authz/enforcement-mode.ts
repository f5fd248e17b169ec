import type { Decision } from './decision.js';
import type { CompiledService } from '../policy/compiled-policy.js';

/**
 * Applies the enforcement mode: a denial under a `report-only` route (or, for requests no route matches,
 * a `report-only` service) becomes an allow that carries the denial as `wouldDeny`, with the verified
 * identity if there was one. A path that cannot be matched safely is always refused: no rule is being
 * trialled there. Pure.
 */
export function applyEnforcementMode(service: CompiledService, decision: Decision): Decision {
  if (decision.kind === 'allow' || decision.code === 'path_invalid') return decision;
  const mode = decision.route?.mode ?? service.mode;
  if (mode !== 'report-only') return decision;
  return {
    kind: 'allow',
    route: decision.route,
    ...(decision.identity === undefined ? {} : { identity: decision.identity }),
    wouldDeny: decision,
  };
}
