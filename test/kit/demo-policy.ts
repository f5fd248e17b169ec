import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { repoRoot } from './process.js';

/**
 * The shipped policy.yaml, its routes and sender constraints untouched, with `changes` over its top level
 * (its issuers, public_origin, dpop settings).
 */
export async function demoPolicyWith(changes: Record<string, unknown>): Promise<Record<string, unknown>> {
  const demo = parse(await readFile(path.join(repoRoot, 'policy.yaml'), 'utf8')) as Record<string, unknown>;
  return { ...demo, ...changes };
}

/**
 * Writes {@link demoPolicyWith}'s policy to `policy.yaml` in a fresh temporary folder.
 * @returns the path of the policy file
 */
export async function writeDemoPolicy(changes: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'authz-demo-policy-'));
  const policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(await demoPolicyWith(changes)));
  return policyFile;
}

/**
 * Writes the shipped policy.yaml, its routes untouched, trusting one issuer instead of its own: the dev IdP
 * of this test run at `issuer`, found by discovery. Keys are refetched within seconds (a 1 s cooldown and
 * the least cache TTL, 10 s) so key rotation and retirement show in a test run, not after minutes.
 *
 * @param publicOrigin where this run's Envoy listens (one origin or several): the demo's public_origin
 * names port 8000, and a DPoP proof's htu must name the origin the client really called (RFC 9449 section
 * 4.3). Default: the shipped policy's, unchanged.
 * @param changes more top-level settings, e.g. `{ dpop: { nonce: 'required' } }`
 * @returns the path of the policy file, in a fresh temporary folder.
 */
export async function writeDemoPolicyTrusting(
  issuer: string,
  publicOrigin?: string | readonly string[],
  changes: Record<string, unknown> = {},
): Promise<string> {
  return writeDemoPolicy({
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
    ...changes,
  });
}
