import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { repoRoot } from './envoy-binary.js';

/**
 * Writes the shipped policy.yaml, its routes untouched, trusting one issuer instead of its own: the dev IdP
 * of this test run at `issuer`, found by discovery. Keys are refetched within seconds (a 1 s cooldown and
 * the least cache TTL, 10 s) so key rotation and retirement show in a test run, not after minutes.
 *
 * @param publicOrigin where this run's Envoy listens (one origin or several): the demo's public_origin
 * names port 8000, and a DPoP proof's htu must name the origin the client really called (RFC 9449 section
 * 4.3). Default: the shipped policy's, unchanged.
 * @returns the path of the policy file, in a fresh temporary folder.
 */
export async function writeDemoPolicyTrusting(
  issuer: string,
  publicOrigin?: string | readonly string[],
): Promise<string> {
  const demo = parse(await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8')) as Record<string, unknown>;
  const policy = {
    ...demo,
    ...(publicOrigin === undefined ? {} : { public_origin: publicOrigin }),
    issuers: [
      {
        issuer,
        audiences: ['https://my-banking-api'],
        discovery: true,
        algorithms: ['RS256'],
        require_typ: 'at+jwt',
        jwks_refresh_cooldown: '1s',
        jwks_cache_ttl: '10s',
      },
    ],
  };
  const dir = await mkdtemp(path.join(tmpdir(), 'authz-demo-policy-'));
  const policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(policy));
  return policyFile;
}
