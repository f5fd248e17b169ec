import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainCommand } from '../../../src/policy-tools/explain-command.js';
import type { Explanation } from '../../../src/policy-tools/explain-request.js';
import { AUDIENCE, createTempDir, ISSUER, writeTextFile } from '../../kit/authz-harness.js';
import { captureIo, OPS_NOW } from '../../kit/capture-io.js';
import { demoPolicyText } from '../../kit/inline-policy.js';
import { generateTestKey, signTestToken, type TestKey } from '../../kit/tokens.js';

// `authz explain` shows the limits of the token's issuer (max_token_lifetime, clock_tolerance,
// jwks_max_stale, jwks_fetch_wait), and a real token is held to them as the server holds it.

const NOW_SECONDS = OPS_NOW / 1000;
const LIMITS_LINE =
  '           limits:    max_token_lifetime 2h, clock_tolerance 1m, jwks_max_stale 12h, jwks_fetch_wait 800ms\n';

let temp: { dir: string; remove: () => Promise<void> };
let key: TestKey;
let policyFile: string;

beforeAll(async () => {
  temp = await createTempDir('authz-explain-limits-');
  key = await generateTestKey('limits-key');
  await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
  policyFile = await writeTextFile(
    temp.dir,
    'policy.yaml',
    demoPolicyText(['{ methods: [GET], path: /balance, scopes: [view:balance] }'], {
      keys: { jwksFile: 'jwks.json' },
      issuerSettings: {
        max_token_lifetime: '2h',
        clock_tolerance: '1m',
        jwks_max_stale: '12h',
        jwks_fetch_wait: '800ms',
      },
    }),
  );
});

afterAll(async () => {
  await temp?.remove();
});

async function explain(...args: string[]): Promise<string> {
  const capture = captureIo();
  const code = await explainCommand(
    [
      '--policy',
      policyFile,
      '--method',
      'GET',
      '--path',
      '/balance',
      ...args,
      '--now',
      '2026-11-27T12:00:00Z',
    ],
    capture.io,
  );
  expect(capture.stderr()).toBe('');
  expect(code).toBe(0);
  return capture.stdout();
}

const token = (claims: Record<string, unknown>) =>
  signTestToken(key, { issuer: ISSUER, audience: AUDIENCE }, { now: NOW_SECONDS, claims });

describe('authz explain: the issuer limits', () => {
  it('prints the limits of the issuer of given claims', async () => {
    expect(await explain('--claims', '{"scope": "view:balance"}')).toContain(LIMITS_LINE);
  });

  it('gives them in --json, in seconds and, for jwks_fetch_wait, milliseconds', async () => {
    const explanation = JSON.parse(
      await explain('--claims', '{"scope": "view:balance"}', '--json'),
    ) as Explanation;
    expect(explanation.token.limits).toEqual({
      clock_tolerance: 60,
      max_token_lifetime: 7200,
      jwks_max_stale: 43_200,
      jwks_fetch_wait_ms: 800,
    });
  });

  it('shows none for claims of an issuer the policy does not trust', async () => {
    const explanation = JSON.parse(
      await explain('--claims', '{"iss": "https://other.example/"}', '--json'),
    ) as Explanation;
    expect(explanation.token.limits).toBeUndefined();
  });

  it('refuses a real token that lives longer than max_token_lifetime, and says which limit', async () => {
    const jwt = await token({ iat: NOW_SECONDS, exp: NOW_SECONDS + 2 * 3600 + 61 });
    const output = await explain('--token', jwt);
    expect(output).toContain(
      "token      the token was refused: token_lifetime_exceeded: the token's lifetime is longer than this API accepts\n",
    );
    expect(output).toContain(LIMITS_LINE);
    expect(output).toContain('response   401\n');
  });

  it('refuses a real token issued in the future', async () => {
    const jwt = await token({ iat: NOW_SECONDS + 61, exp: NOW_SECONDS + 3600 });
    expect(await explain('--token', jwt)).toContain(
      'token      the token was refused: token_issued_in_future: the token was issued in the future\n',
    );
  });

  it('accepts a real token at the limit, with the tolerance', async () => {
    const jwt = await token({ iat: NOW_SECONDS + 60, exp: NOW_SECONDS + 60 + 2 * 3600 + 60 });
    const output = await explain('--token', jwt);
    expect(output).toContain('decision   allow\n');
    expect(output).toContain(LIMITS_LINE);
  });

  it('leaves the time checks out for given claims, as it does exp and nbf', async () => {
    const claims = JSON.stringify({
      scope: 'view:balance',
      iat: NOW_SECONDS + 86_400,
      exp: NOW_SECONDS + 9e9,
    });
    expect(await explain('--claims', claims)).toContain('decision   allow\n');
  });
});
