import { describe, expect, it } from 'vitest';
import { isPkceValue, verifierMatchesChallenge } from '../../../../src/demo/idp/pkce.js';

// RFC 7636 appendix B.
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('PKCE S256', () => {
  it('matches the RFC 7636 appendix B example', () => {
    expect(verifierMatchesChallenge(VERIFIER, CHALLENGE)).toBe(true);
  });

  it.each([
    ['another verifier', VERIFIER.replace('d', 'e'), CHALLENGE],
    ['the challenge as verifier (plain)', CHALLENGE, CHALLENGE],
    ['a verifier of 42 characters', VERIFIER.slice(0, 42), CHALLENGE],
    ['a verifier with a space', `${VERIFIER} `, CHALLENGE],
    ['a challenge of another length', VERIFIER, CHALLENGE.slice(1)],
  ])('refuses %s', (_name, verifier, challenge) => {
    expect(verifierMatchesChallenge(verifier, challenge)).toBe(false);
  });

  it.each([
    ['43 unreserved characters', 'a'.repeat(43), true],
    ['128 unreserved characters', '-._~'.repeat(32), true],
    ['42 characters', 'a'.repeat(42), false],
    ['129 characters', 'a'.repeat(129), false],
    ['a plus sign', `${'a'.repeat(42)}+`, false],
    ['a non-ASCII letter', `${'a'.repeat(42)}é`, false],
  ])('%s: well-formed %s', (_name, value, expected) => {
    expect(isPkceValue(value)).toBe(expected);
  });
});
