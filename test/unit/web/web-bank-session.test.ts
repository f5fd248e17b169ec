import { describe, expect, it } from 'vitest';
import type { StepUpRequest } from '../../../src/client/step-up-plan.js';
import {
  BankSession,
  type ApiAnswer,
  type Operation,
  type SessionView,
  type SignInPrompt,
} from '../../../web/src/bank-session.js';
import type { HeldToken } from '../../../web/src/held-tokens.js';
import { SignInError } from '../../../web/src/sign-in-error.js';
import type { TokenGrant } from '../../../web/src/token-response.js';

/*
 * The web app's behaviour without a browser: a fake bank that answers as the sidecar does for the demo
 * policy (401 / 403 insufficient_scope / 401 insufficient_user_authentication / 401 invalid_token), a fake
 * identity provider, and a view that records. The real thing runs in Chromium in test/browser.
 */

const BALANCE: Operation = { method: 'GET', path: '/balance', purpose: 'see your balance' };
const TRANSFER: Operation = {
  method: 'POST',
  path: '/transfer',
  body: { to: 'bob', amount: 25 },
  purpose: 'transfer 25 to bob',
};
const REALM = 'Bearer realm="bank-api"';

interface FakeToken {
  readonly scopes: ReadonlySet<string>;
  readonly mfa: boolean;
  valid: boolean;
}

/**
 * How the fake bank words its challenges: `bearer`, as for a Bearer token; `dpop`, as the sidecar does
 * for a DPoP token where both schemes are accepted (RFC 9449 section 7.1): a bare Bearer challenge, then
 * the error under DPoP, joined with ", " as fetch joins several WWW-Authenticate lines.
 */
type ChallengeStyle = 'bearer' | 'dpop';

function challenge(style: ChallengeStyle, params = ''): string {
  return style === 'bearer' ? `${REALM}${params}` : `${REALM}, DPoP realm="bank-api", algs="ES256"${params}`;
}

class FakeBank {
  readonly tokens = new Map<string, FakeToken>();
  readonly calls: { key: string; token: string | undefined; type: string | undefined }[] = [];
  balance = 1000;

  constructor(private readonly style: ChallengeStyle = 'bearer') {}

  async call(operation: Operation, grant: TokenGrant | undefined): Promise<ApiAnswer> {
    const token = grant?.accessToken;
    this.calls.push({ key: `${operation.method} ${operation.path}`, token, type: grant?.tokenType });
    const held = token === undefined ? undefined : this.tokens.get(token);
    const style = token === undefined ? 'bearer' : this.style;
    if (token === undefined)
      return { status: 401, challenge: challenge(this.style), body: { error: 'unauthorized' } };
    if (held === undefined || !held.valid)
      return {
        status: 401,
        challenge: challenge(style, ', error="invalid_token"'),
        body: { error: 'invalid_token' },
      };
    const needed = operation.method === 'GET' ? 'view:balance' : 'transfer:funds';
    if (!held.scopes.has(needed)) {
      return {
        status: 403,
        challenge: challenge(style, `, error="insufficient_scope", scope="${needed}"`),
        body: { error: 'insufficient_scope' },
      };
    }
    if (operation.method === 'GET')
      return { status: 200, challenge: null, body: { account: 'alice', balance: this.balance } };
    if (!held.mfa) {
      return {
        status: 401,
        challenge: challenge(
          style,
          ', error="insufficient_user_authentication", acr_values="urn:bank:mfa", max_age="600"',
        ),
        body: { error: 'insufficient_user_authentication' },
      };
    }
    this.balance -= 25;
    return {
      status: 201,
      challenge: null,
      body: { from: 'alice', to: 'bob', amount: 25, balance: this.balance },
    };
  }
}

class RecordingView implements SessionView {
  prompt: SignInPrompt | undefined;
  balance: number | undefined;
  transfers: { to: string; amount: number; balance: number }[] = [];
  answers: number[] = [];
  notes: { message: string; tone: string }[] = [];
  tokens: readonly HeldToken[] = [];
  showAnswer(_operation: Operation, answer: ApiAnswer) {
    this.answers.push(answer.status);
  }
  showBalance(_account: string, balance: number) {
    this.balance = balance;
  }
  showTransfer(result: { to: string; amount: number; balance: number }) {
    this.transfers.push(result);
  }
  showPrompt(prompt: SignInPrompt | undefined) {
    this.prompt = prompt;
  }
  showTokens(tokens: readonly HeldToken[]) {
    this.tokens = tokens;
  }
  note(message: string, tone: 'info' | 'success' | 'error') {
    this.notes.push({ message, tone });
  }
  lastError(): string | undefined {
    return this.notes.filter((note) => note.tone === 'error').at(-1)?.message;
  }
}

/** The session with the fakes; `grantMfa` says whether the fake IdP's step-up logins carry a second factor. */
function setUp(
  options: {
    grantMfa?: boolean;
    grantScope?: (want: string) => string;
    fail?: SignInError;
    style?: ChallengeStyle;
  } = {},
) {
  const bank = new FakeBank(options.style);
  const view = new RecordingView();
  const signIns: (StepUpRequest & { scope: string })[] = [];
  let issued = 0;
  const session = new BankSession({
    callApi: (operation, token) => bank.call(operation, token),
    signIn: (want) => {
      signIns.push(want);
      if (options.fail !== undefined) return Promise.reject(options.fail);
      const token = `token-${++issued}`;
      const scope = options.grantScope?.(want.scope) ?? want.scope;
      const scopes = new Set(scope.split(' '));
      const mfa = options.grantMfa ?? (scopes.has('transfer:funds') || want.acrValues !== undefined);
      bank.tokens.set(token, { scopes, mfa, valid: true });
      const grant: TokenGrant = {
        accessToken: token,
        tokenType: options.style === 'dpop' ? 'DPoP' : 'Bearer',
        scopes: [...scopes],
        expiresAtMs: undefined,
      };
      return Promise.resolve(grant);
    },
    signInScope: 'openid view:balance',
    view,
  });
  return { bank, view, session, signIns };
}

async function signedIn(style: ChallengeStyle = 'bearer') {
  const setup = setUp({ style });
  await setup.session.run(BALANCE);
  await setup.session.continuePending();
  return setup;
}

describe('BankSession', () => {
  it('a first call without a token asks to sign in, and only goes to the IdP when the person agrees', async () => {
    const { session, view, signIns, bank } = setUp();
    await session.run(BALANCE);

    expect(view.answers).toEqual([401]);
    expect(view.prompt?.title).toBe('Sign in');
    expect(view.prompt?.explanation).toContain('401');
    expect(signIns).toEqual([]);

    await session.continuePending();
    expect(signIns).toEqual([{ scope: 'openid view:balance' }]);
    expect(view.answers).toEqual([401, 200]);
    expect(view.balance).toBe(1000);
    expect(view.prompt).toBeUndefined();
    expect(bank.calls.map((call) => call.token)).toEqual([undefined, 'token-1']);
    expect(session.heldTokens().map((held) => held.role)).toEqual(['sign_in']);
  });

  it('403 insufficient_scope: explains the second factor, asks for exactly the challenged scope, retries once', async () => {
    const { session, view, signIns, bank } = await signedIn();
    await session.run(TRANSFER);

    expect(view.answers.at(-1)).toBe(403);
    expect(view.prompt?.title).toBe('Confirm it is you');
    expect(view.prompt?.explanation).toContain('"transfer:funds"');
    expect(view.prompt?.explanation).toContain('second factor');
    expect(view.prompt?.action).toBe('Continue to the identity provider');
    expect(bank.balance).toBe(1000);

    await session.continuePending();
    expect(signIns.at(-1)).toEqual({ scope: 'transfer:funds' });
    expect(view.answers.slice(-2)).toEqual([403, 201]);
    expect(view.transfers).toEqual([{ to: 'bob', amount: 25, balance: 975 }]);
    expect(view.balance).toBe(975);
    expect(bank.balance).toBe(975);
  });

  it('keeps the step-up token for its operation only: the balance still uses the sign-in token', async () => {
    const { session, bank } = await signedIn();
    await session.run(TRANSFER);
    await session.continuePending();
    await session.run(BALANCE);
    await session.run(TRANSFER);

    const used = bank.calls.slice(-2).map((call) => `${call.key} ${call.token}`);
    expect(used).toEqual(['GET /balance token-1', 'POST /transfer token-2']);
    expect(session.heldTokens().map((held) => [held.role, held.operation])).toEqual([
      ['sign_in', undefined],
      ['step_up', 'POST /transfer'],
    ]);
  });

  it('401 insufficient_user_authentication: same scope, with acr_values and max_age from the challenge', async () => {
    const { session, view, signIns, bank } = setUp({ grantMfa: false });
    await session.run(BALANCE);
    await session.continuePending();
    await session.run(TRANSFER); // 403: needs transfer:funds
    await session.continuePending(); // a token with the scope but a password-only login: 401
    expect(view.answers.slice(-2)).toEqual([403, 401]);
    expect(view.prompt?.explanation).toContain('insufficient_user_authentication');
    expect(view.prompt?.explanation).toContain('urn:bank:mfa');
    expect(view.prompt?.explanation).toContain('10 minutes');

    await session.continuePending();
    expect(signIns.at(-1)).toEqual({ scope: 'transfer:funds', acrValues: 'urn:bank:mfa', maxAge: '600' });
    // This fake IdP never adds a second factor, so the bank still refuses: the app stops there.
    expect(view.answers.slice(-1)).toEqual([401]);
    expect(bank.balance).toBe(1000);
    expect(view.prompt).toBeUndefined();
  });

  it('401 invalid_token: drops the token and signs in again for the same scope', async () => {
    const { session, view, signIns, bank } = await signedIn();
    bank.tokens.get('token-1')!.valid = false;
    await session.run(BALANCE);

    expect(view.prompt?.title).toBe('Sign in again');
    expect(session.heldTokens()).toEqual([]);
    expect(view.tokens).toEqual([]);

    await session.continuePending();
    expect(signIns.at(-1)).toEqual({ scope: 'openid view:balance' });
    expect(view.answers.at(-1)).toBe(200);
    expect(session.heldTokens().map((held) => [held.role, held.grant.accessToken])).toEqual([
      ['sign_in', 'token-2'],
    ]);
  });

  it('does not loop: a step-up that does not help ends with an error, not another prompt', async () => {
    const { session, view, signIns } = setUp({ grantScope: () => 'openid view:balance' });
    await session.run(BALANCE);
    await session.continuePending();
    await session.run(TRANSFER);
    await session.continuePending(); // the IdP granted less than asked: still 403

    expect(signIns).toHaveLength(2);
    expect(view.prompt).toBeUndefined();
    expect(view.lastError()).toContain('still refuses');
  });

  it('cancel drops the operation: no sign-in, no call', async () => {
    const { session, view, signIns, bank } = await signedIn();
    await session.run(TRANSFER);
    const calls = bank.calls.length;
    session.cancelPending();

    expect(view.prompt).toBeUndefined();
    await session.continuePending();
    expect(signIns).toHaveLength(1);
    expect(bank.calls).toHaveLength(calls);
    expect(bank.balance).toBe(1000);
  });

  it('a failed sign-in says so and sends nothing to the bank', async () => {
    const { session, view, bank } = setUp({
      fail: new SignInError('popup_closed', 'The sign-in window was closed.'),
    });
    await session.run(BALANCE);
    await session.continuePending();

    expect(bank.calls).toHaveLength(1);
    expect(view.lastError()).toBe('The sign-in window was closed. Nothing was sent to the bank.');
  });

  it('opens the sign-in within the click: signIn is called before the first await', async () => {
    const { session, signIns } = setUp();
    await session.run(BALANCE);
    const continuing = session.continuePending();
    expect(signIns).toHaveLength(1);
    await continuing;
  });

  it('gives up, with the reason, on a refusal no token can fix', async () => {
    const view = new RecordingView();
    const session = new BankSession({
      callApi: async () => ({ status: 503, challenge: null, body: { error: 'no_capacity' } }),
      signIn: () => Promise.reject(new Error('not called')),
      signInScope: 'openid',
      view,
    });
    await session.run(BALANCE);
    expect(view.prompt).toBeUndefined();
    expect(view.lastError()).toContain('503 no_capacity');
  });

  it('shows the bank own error for a refusal that is not about the token', async () => {
    const view = new RecordingView();
    const session = new BankSession({
      callApi: async () => ({ status: 409, challenge: null, body: { error: 'insufficient_funds' } }),
      signIn: () => Promise.reject(new Error('not called')),
      signInScope: 'openid',
      view,
    });
    await session.run(TRANSFER);
    expect(view.lastError()).toBe('The bank refused (409 insufficient_funds).');
  });

  it('a 403 without a usable challenge says why nothing more is tried', async () => {
    const view = new RecordingView();
    const session = new BankSession({
      callApi: async () => ({
        status: 403,
        challenge: 'Bearer realm="bank-api"',
        body: { error: 'access_denied' },
      }),
      signIn: () => Promise.reject(new Error('not called')),
      signInScope: 'openid',
      view,
    });
    await session.run(TRANSFER);
    expect(view.prompt).toBeUndefined();
    expect(view.lastError()).toMatch(/^The bank refused \(403 access_denied\)\. Nothing a new token can fix/);
  });

  it('says so when the bank cannot be reached', async () => {
    const view = new RecordingView();
    const session = new BankSession({
      callApi: () => Promise.reject(new TypeError('fetch failed')),
      signIn: () => Promise.reject(new Error('not called')),
      signInScope: 'openid',
      view,
    });
    await session.run(TRANSFER);
    expect(view.lastError()).toBe('The bank could not be reached (POST /transfer).');
  });
});

describe('BankSession with DPoP-bound tokens (challenges under the DPoP scheme)', () => {
  it('presents each token as its type says', async () => {
    const { bank } = await signedIn('dpop');
    expect(bank.calls.map((call) => call.type)).toEqual([undefined, 'DPoP']);
  });

  it('403 insufficient_scope under DPoP, after a bare Bearer challenge: steps up for the challenged scope', async () => {
    const { session, view, signIns, bank } = await signedIn('dpop');
    await session.run(TRANSFER);
    expect(view.answers.at(-1)).toBe(403);
    expect(view.prompt?.title).toBe('Confirm it is you');

    await session.continuePending();
    expect(signIns.at(-1)).toEqual({ scope: 'transfer:funds' });
    expect(view.answers.slice(-2)).toEqual([403, 201]);
    expect(bank.balance).toBe(975);
    expect(bank.calls.at(-1)).toEqual({ key: 'POST /transfer', token: 'token-2', type: 'DPoP' });
  });

  it('401 insufficient_user_authentication under DPoP: acr_values and max_age come from the DPoP challenge', async () => {
    const { session, view, signIns } = setUp({ grantMfa: false, style: 'dpop' });
    await session.run(BALANCE);
    await session.continuePending();
    await session.run(TRANSFER);
    await session.continuePending();
    expect(view.answers.slice(-2)).toEqual([403, 401]);
    await session.continuePending();
    expect(signIns.at(-1)).toEqual({ scope: 'transfer:funds', acrValues: 'urn:bank:mfa', maxAge: '600' });
  });

  it('401 invalid_token under DPoP: drops the token and signs in again', async () => {
    const { session, view, bank } = await signedIn('dpop');
    bank.tokens.get('token-1')!.valid = false;
    await session.run(BALANCE);
    expect(view.prompt?.title).toBe('Sign in again');
    expect(session.heldTokens()).toEqual([]);
  });
});
