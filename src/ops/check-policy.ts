import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { policyFindings, type PolicyFinding } from '../policy/policy-findings.js';
import type { YamlLocations } from '../policy/yaml-locations.js';

export { ENVOY_EXT_AUTHZ_TIMEOUT_MS, type PolicyFinding } from '../policy/policy-findings.js';

/**
 * What `authz check-policy` reports about a policy that compiles: every finding of `policyFindings`
 * (docs/policy-checks.md), errors, warnings and notices, accepted ones included. Kept under this name for
 * the callers that knew the findings as warnings.
 */
export function policyWarnings(policy: CompiledPolicy, locations: YamlLocations): PolicyFinding[] {
  return policyFindings(policy, locations);
}
