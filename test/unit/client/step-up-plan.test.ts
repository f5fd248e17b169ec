import { describe, expect, it } from 'vitest';
import { planStepUp } from '../../../src/client/step-up-plan.js';

/*
 * planStepUp reads only the status and the challenge: the same answers the sidecar sends through Envoy
 * (RFC 6750 section 3, RFC 9470 section 3), plus the malformed ones a client must not act on.
 */

describe('planStepUp', () => {
  it('403 insufficient_scope: exactly the challenged scope, not the held one', () => {
    const plan = planStepUp(
      {
        status: 403,
        challenge: 'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds"',
      },
      'openid view:balance',
    );
    expect(plan.kind).toBe('scope');
    expect(plan.kind === 'scope' && plan.request).toEqual({ scope: 'transfer:funds' });
  });

  it('401 insufficient_user_authentication: the held scope with acr_values and max_age', () => {
    const plan = planStepUp(
      {
        status: 401,
        challenge:
          'Bearer realm="bank-api", error="insufficient_user_authentication", acr_values="urn:bank:mfa", max_age="600"',
      },
      ' transfer:funds ',
    );
    expect(plan.kind === 'authentication' && plan.request).toEqual({
      scope: 'transfer:funds',
      acrValues: 'urn:bank:mfa',
      maxAge: '600',
    });
  });

  it('401 without an error code (no token sent): sign in, with the client choosing the scope', () => {
    const plan = planStepUp({ status: 401, challenge: 'Bearer realm="bank-api"' }, '');
    expect(plan.kind === 'sign_in' && [plan.reason, plan.request]).toEqual(['no_token', {}]);
  });

  it('401 invalid_token: sign in again for the scope of the refused token', () => {
    const plan = planStepUp(
      {
        status: 401,
        challenge: 'Bearer realm="bank-api", error="invalid_token", error_description="expired"',
      },
      'openid view:balance',
    );
    expect(plan.kind === 'sign_in' && [plan.reason, plan.request]).toEqual([
      'invalid_token',
      { scope: 'openid view:balance' },
    ]);
  });

  it('the scheme is case-insensitive and other schemes are skipped', () => {
    const plan = planStepUp(
      { status: 403, challenge: 'Basic realm="x", bearer error="insufficient_scope", scope="a b"' },
      '',
    );
    expect(plan.kind === 'scope' && plan.request.scope).toBe('a b');
  });

  it.each([
    ['no challenge at all', { status: 401, challenge: null }],
    ['a malformed challenge', { status: 401, challenge: 'Bearer realm="unterminated' }],
    ['only another scheme', { status: 401, challenge: 'Basic realm="x"' }],
    [
      '403 insufficient_scope without a scope',
      { status: 403, challenge: 'Bearer error="insufficient_scope"' },
    ],
    ['403 with no error code', { status: 403, challenge: 'Bearer realm="bank-api"' }],
    ['400 invalid_request', { status: 400, challenge: 'Bearer error="invalid_request"' }],
    [
      'insufficient_scope on a 401',
      { status: 401, challenge: 'Bearer error="insufficient_scope", scope="a"' },
    ],
    ['an unknown error code', { status: 401, challenge: 'Bearer error="something_else"' }],
  ])('gives up on %s, saying why', (_name, answer) => {
    const plan = planStepUp(answer, 'view:balance');
    expect(plan.kind).toBe('give_up');
    expect(plan.kind === 'give_up' && plan.explanation.length).toBeGreaterThan(10);
  });
});
