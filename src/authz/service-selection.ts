import { answerForDecision } from './answer-for-decision.js';
import type { Authorization } from './authorization.js';
import type { Denial } from './decision.js';
import type { RequestFacts } from './request-facts.js';
import { normalisedRequestHost } from './request-host.js';
import type { CompiledPolicy, CompiledService } from '../policy/compiled-policy.js';

/** The service a request is for, or the finished authorization when none can be chosen. */
export type ServiceChoice =
  | { readonly kind: 'service'; readonly service: CompiledService }
  | { readonly kind: 'decided'; readonly authorization: Authorization };

/**
 * Chooses the service of a request, pure: the one the proxy names (ext_authz `context_extensions`
 * `service`), which takes precedence over the host; else the one claiming the request's host (exact name,
 * then one wildcard label; docs/policy.md, "Services"); else the implicit service of a file without `services`.
 * A name the policy does not know is a configuration error, denied rather than guessed around
 * (`service_unknown`); a host no service claims is denied with no challenge (`no_service`): there is no
 * realm to name. A policy directory's service whose file is refused with no version in force is answered
 * 503 (`service_unavailable`) by name or host until a good version is saved.
 */
export function chooseService(policy: CompiledPolicy, request: RequestFacts<unknown>): ServiceChoice {
  const { serviceSelector } = policy;
  if (request.serviceName !== undefined) {
    const named = serviceSelector.byName(request.serviceName);
    if (named !== undefined) return { kind: 'service', service: named };
    const outcomes = unchosen(policy);
    const unavailable = policy.unavailable?.hasName(request.serviceName) === true;
    return { kind: 'decided', authorization: unavailable ? outcomes.unavailable : outcomes.serviceUnknown };
  }
  const host = normalisedRequestHost(request.host);
  const service = serviceSelector.forHost(host);
  if (service !== undefined) return { kind: 'service', service };
  const outcomes = unchosen(policy);
  return {
    kind: 'decided',
    authorization: policy.unavailable?.hasHost(host) === true ? outcomes.unavailable : outcomes.noService,
  };
}

interface Unchosen {
  readonly noService: Authorization;
  readonly serviceUnknown: Authorization;
  readonly unavailable: Authorization;
}

// Built once per policy; entries go with the policy when a reload drops it.
const unchosenByPolicy = new WeakMap<CompiledPolicy, Unchosen>();

function unchosen(policy: CompiledPolicy): Unchosen {
  let outcomes = unchosenByPolicy.get(policy);
  if (outcomes === undefined) {
    outcomes = Object.freeze({
      noService: denied({
        kind: 'deny',
        code: 'no_service',
        description: 'no service answers for this host',
      }),
      serviceUnknown: denied({
        kind: 'deny',
        code: 'service_unknown',
        description: 'the proxy named a service this policy does not have',
      }),
      // A policy directory's service file refused with no version in force: retry once it is fixed.
      unavailable: denied({
        kind: 'deny',
        code: 'service_unavailable',
        description: "this service's policy is not in force yet",
      }),
    });
    unchosenByPolicy.set(policy, outcomes);
  }
  return outcomes;
}

function denied(decision: Denial): Authorization {
  const frozen = Object.freeze(decision);
  return Object.freeze({
    service: undefined,
    route: undefined,
    verification: undefined,
    decision: frozen,
    // Neither denial challenges (no realm to name), so the realm given here is never written.
    answer: Object.freeze(answerForDecision(frozen, '')),
    wouldDenyAnswer: undefined,
  });
}
