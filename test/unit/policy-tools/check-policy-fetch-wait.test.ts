import { describe, expect, it } from 'vitest';
import { ENVOY_EXT_AUTHZ_TIMEOUT_MS, policyFindings } from '../../../src/policy/policy-findings.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { YamlLocations } from '../../../src/policy/yaml-locations.js';
import { demoPolicyText } from '../../kit/inline-policy.js';
import { repoFile } from '../../kit/capture-io.js';
import { readFile } from 'node:fs/promises';

// `authz check-policy` warns when an issuer's jwks_fetch_wait is not below Envoy's ext_authz timeout: Envoy
// would give up on the request first and answer 503 itself, with no decision logged.

function warningsFor(issuerSettings: Record<string, string | number>) {
  // A read-only public route and require_typ: no other finding.
  const text = demoPolicyText(['{ methods: [GET], path: /healthz, public: true }'], {
    issuerSettings: { ...issuerSettings, require_typ: 'at+jwt' },
  });
  return policyFindings(compilePolicy(text, 'policy.yaml'), new YamlLocations(text));
}

describe('authz check-policy: jwks_fetch_wait against Envoy ext_authz timeout', () => {
  it('knows the timeout of the shipped envoy/envoy.yaml', async () => {
    const envoy = await readFile(repoFile('envoy/envoy.yaml'), 'utf8');
    const timeout = /envoy_grpc:[\s\S]*?\btimeout: (\d+(?:\.\d+)?)s\b/.exec(envoy)?.[1];
    expect(Number(timeout) * 1000).toBe(ENVOY_EXT_AUTHZ_TIMEOUT_MS);
  });

  it.each(['1s', '1000ms', '1', '10s'])('warns at %s, at the line of the setting', (value) => {
    expect(warningsFor({ jwks_fetch_wait: value })).toEqual([
      {
        code: 'fetch_wait_exceeds_envoy_timeout',
        level: 'warning',
        line: 8,
        column: 5,
        path: 'issuers[0].jwks_fetch_wait',
        message: expect.stringMatching(
          /^jwks_fetch_wait \d+s is not below Envoy's ext_authz timeout \(1s in envoy\/envoy\.yaml\): Envoy would give up first/,
        ),
        fix: expect.stringMatching(/^Set jwks_fetch_wait below Envoy's ext_authz timeout/),
      },
    ]);
  });

  it.each(['999ms', '500ms', '0'])('says nothing at %s', (value) => {
    expect(warningsFor({ jwks_fetch_wait: value })).toEqual([]);
  });

  it('says nothing with the default (500ms)', () => {
    expect(warningsFor({})).toEqual([]);
  });
});
