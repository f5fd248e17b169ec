import { describe, expect, it } from 'vitest';
import { findTokenChallenge } from '../../../src/client/find-bearer-challenge.js';
import { parseWwwAuthenticate } from '../../../src/client/parse-www-authenticate.js';
import { planStepUp } from '../../../src/client/step-up-plan.js';

/*
 * Step-up under the DPoP scheme (RFC 9449 section 7.1): the same error parameters as Bearer, plus `algs`,
 * and, where both schemes are accepted, one challenge per scheme with the error under the scheme the client
 * used. Several WWW-Authenticate lines arrive joined with ", " (fetch's Headers.get).
 */

const challengesOf = (value: string) => {
  const parsed = parseWwwAuthenticate(value);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.challenges;
};

describe('findTokenChallenge', () => {
  it('reads a DPoP challenge with algs', () => {
    const view = findTokenChallenge(
      challengesOf('DPoP algs="ES256 PS256", error="insufficient_scope", scope="transfer:funds"'),
    );
    expect(view).toMatchObject({
      scheme: 'DPoP',
      algs: ['ES256', 'PS256'],
      error: 'insufficient_scope',
      scope: ['transfer:funds'],
    });
  });

  it('takes the challenge carrying the error, whichever scheme comes first', () => {
    expect(
      findTokenChallenge(challengesOf('Bearer realm="bank-api", DPoP algs="ES256", error="invalid_token"')),
    ).toMatchObject({ scheme: 'DPoP', error: 'invalid_token' });
    expect(
      findTokenChallenge(challengesOf('DPoP algs="ES256", Bearer realm="bank-api", error="invalid_token"')),
    ).toMatchObject({ scheme: 'Bearer', error: 'invalid_token', realm: 'bank-api' });
  });

  it('takes the first of either scheme when none carries an error, in any letter case', () => {
    expect(findTokenChallenge(challengesOf('Basic realm="x", dpop algs="ES256", Bearer'))).toMatchObject({
      scheme: 'DPoP',
    });
  });

  it('finds nothing under other schemes or in token68 form', () => {
    expect(findTokenChallenge(challengesOf('Basic realm="x", DPoP abc=='))).toBeUndefined();
  });
});

describe('planStepUp with DPoP challenges', () => {
  it('403 insufficient_scope under DPoP: exactly the challenged scope', () => {
    const plan = planStepUp(
      {
        status: 403,
        challenge: 'DPoP algs="ES256", error="insufficient_scope", scope="transfer:funds"',
      },
      'openid view:balance',
    );
    expect(plan.kind === 'scope' && [plan.request, plan.challenge.scheme]).toEqual([
      { scope: 'transfer:funds' },
      'DPoP',
    ]);
  });

  it('401 insufficient_user_authentication under DPoP, beside a bare Bearer challenge', () => {
    const plan = planStepUp(
      {
        status: 401,
        challenge:
          'Bearer realm="bank-api", DPoP algs="ES256", error="insufficient_user_authentication", ' +
          'acr_values="urn:bank:mfa", max_age="600"',
      },
      'transfer:funds',
    );
    expect(plan.kind === 'authentication' && plan.request).toEqual({
      scope: 'transfer:funds',
      acrValues: 'urn:bank:mfa',
      maxAge: '600',
    });
  });

  it('401 with bare challenges only (no token, or a scheme the route does not take): sign in', () => {
    const plan = planStepUp({ status: 401, challenge: 'DPoP algs="ES256"' }, '');
    expect(plan.kind === 'sign_in' && plan.reason).toBe('no_token');
  });

  it('401 invalid_token under DPoP (a key mismatch): a new token', () => {
    const plan = planStepUp({ status: 401, challenge: 'DPoP algs="ES256", error="invalid_token"' }, 'x');
    expect(plan.kind === 'sign_in' && [plan.reason, plan.request]).toEqual(['invalid_token', { scope: 'x' }]);
  });

  it('gives up on invalid_dpop_proof and use_dpop_nonce: a new token would not help', () => {
    for (const error of ['invalid_dpop_proof', 'use_dpop_nonce']) {
      const plan = planStepUp({ status: 401, challenge: `DPoP algs="ES256", error="${error}"` }, 'x');
      expect(plan.kind).toBe('give_up');
    }
  });

  it('gives up when neither scheme is offered', () => {
    const plan = planStepUp({ status: 401, challenge: 'Basic realm="x"' }, '');
    expect(plan.kind === 'give_up' && plan.explanation).toBe(
      'No usable Bearer or DPoP challenge (no Bearer or DPoP challenge).',
    );
  });
});
