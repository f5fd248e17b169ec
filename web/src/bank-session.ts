import { planStepUp, type StepUpPlan, type StepUpRequest } from '../../src/client/index.js';
import { HeldTokens, type HeldToken, type TokenRole } from './held-tokens.js';
import { SignInError } from './sign-in-error.js';
import type { TokenGrant } from './token-response.js';

/** A call the app makes to the bank API, through Envoy. */
export interface Operation {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: object;
  /** What the person is doing, in words that fit "To ...": "see your balance". */
  readonly purpose: string;
}

/** The bank API's answer, as the app needs it. */
export interface ApiAnswer {
  readonly status: number;
  /** The `WWW-Authenticate` field value, null when absent. */
  readonly challenge: string | null;
  /** The parsed JSON body, or undefined when it was not JSON. */
  readonly body: unknown;
}

/** What the person is asked before the app sends them to the identity provider. */
export interface SignInPrompt {
  readonly title: string;
  /** Why, in plain words: what the bank said and what will happen at the identity provider. */
  readonly explanation: string;
  readonly action: string;
}

/** How the session shows itself; the DOM adapter implements it, tests record it. */
export interface SessionView {
  showAnswer(operation: Operation, answer: ApiAnswer): void;
  showBalance(account: string, balance: number): void;
  showTransfer(result: { to: string; amount: number; balance: number }): void;
  /** Shows the prompt with its button, or hides it (undefined). */
  showPrompt(prompt: SignInPrompt | undefined): void;
  showTokens(tokens: readonly HeldToken[]): void;
  note(message: string, tone: 'info' | 'success' | 'error'): void;
}

/** What the session needs from the outside world. */
export interface SessionPorts {
  /** Calls the API presenting `token` as its type says (Bearer, or DPoP with a proof); none when undefined. */
  callApi(operation: Operation, token: TokenGrant | undefined): Promise<ApiAnswer>;
  /**
   * Sends the person to the identity provider and returns the token. Called directly from a click: an
   * implementation must open any window before its first `await`, or the browser blocks it.
   */
  signIn(want: StepUpRequest & { readonly scope: string }): Promise<TokenGrant>;
  /** The scope of the ordinary sign-in, before any challenge asks for more. */
  readonly signInScope: string;
  readonly view: SessionView;
}

interface Pending {
  readonly operation: Operation;
  readonly plan: Exclude<StepUpPlan, { kind: 'give_up' }>;
  /** The role of the token the refused call carried; undefined when it carried none. */
  readonly refusedRole: TokenRole | undefined;
  /** Plans already followed for this operation: the same one twice means stepping up did not help. */
  readonly tried: readonly StepUpPlan['kind'][];
}

/** Round trips to the identity provider for one operation: sign in, then step up, then give up. */
const MAX_ROUND_TRIPS = 2;

/**
 * The bank app's behaviour, without the DOM: calls the API, reads refusals with `planStepUp` (so what it
 * asks the identity provider for comes from the server's challenge, not from knowledge of the policy),
 * asks the person before leaving for the identity provider, and retries the refused operation once the new
 * token is in hand. Tokens live in memory only.
 */
export class BankSession {
  private readonly tokens = new HeldTokens();
  private pending: Pending | undefined;

  constructor(private readonly ports: SessionPorts) {}

  /** Performs `operation`; a refusal that a new token can fix becomes a prompt. */
  async run(operation: Operation): Promise<void> {
    this.pending = undefined;
    this.ports.view.showPrompt(undefined);
    await this.attempt(operation, []);
  }

  /** The person accepted the prompt: go to the identity provider, then retry the operation. */
  async continuePending(): Promise<void> {
    const pending = this.pending;
    if (pending === undefined) return;
    const { plan, operation } = pending;
    const want = { ...plan.request, scope: plan.request.scope ?? this.ports.signInScope };
    // Called before any await: the sign-in window must open within the click.
    const signingIn = this.ports.signIn(want);
    this.pending = undefined;
    this.ports.view.showPrompt(undefined);
    let grant: TokenGrant;
    try {
      grant = await signingIn;
    } catch (error) {
      const message = error instanceof SignInError ? error.message : 'Signing in failed.';
      this.ports.view.note(`${message} Nothing was sent to the bank.`, 'error');
      return;
    }
    this.tokens.keep(grant, this.roleFor(pending), key(operation));
    this.ports.view.showTokens(this.tokens.list());
    this.ports.view.note(`Signed in for "${want.scope}". Trying again: ${operation.purpose}.`, 'info');
    await this.attempt(operation, [...pending.tried, plan.kind]);
  }

  /** The person declined: the operation is dropped. */
  cancelPending(): void {
    if (this.pending === undefined) return;
    this.ports.view.note(`Cancelled: ${this.pending.operation.purpose}. Nothing was sent.`, 'info');
    this.pending = undefined;
    this.ports.view.showPrompt(undefined);
  }

  /** The tokens held now (for tests and the page's list). */
  heldTokens(): HeldToken[] {
    return this.tokens.list();
  }

  private async attempt(operation: Operation, tried: readonly StepUpPlan['kind'][]): Promise<void> {
    const { view } = this.ports;
    const token = this.tokens.forOperation(key(operation));
    let answer: ApiAnswer;
    try {
      answer = await this.ports.callApi(operation, token);
    } catch {
      view.note(`The bank could not be reached (${operation.method} ${operation.path}).`, 'error');
      return;
    }
    view.showAnswer(operation, answer);
    if (answer.status >= 200 && answer.status < 300) return this.succeeded(operation, answer.body);

    const plan = planStepUp(answer, token?.scopes.join(' ') ?? '');
    if (plan.kind === 'give_up') {
      // Only a 401 or 403 is about the token; for anything else the bank's own error says it all.
      const why = answer.status === 401 || answer.status === 403 ? ` ${plan.explanation}` : '';
      view.note(`The bank refused (${answer.status}${bodyError(answer.body)}).${why}`, 'error');
      return;
    }
    const refusedRole = token === undefined ? undefined : this.tokens.roleOf(token);
    if (plan.kind === 'sign_in' && plan.reason === 'invalid_token' && token !== undefined) {
      this.tokens.drop(token);
      view.showTokens(this.tokens.list());
    }
    if (tried.includes(plan.kind) || tried.length >= MAX_ROUND_TRIPS) {
      view.note(
        `The bank still refuses after signing in (${answer.status}); stopping rather than asking again.`,
        'error',
      );
      return;
    }
    this.pending = { operation, plan, refusedRole, tried };
    view.showPrompt(promptFor(plan, operation));
  }

  /**
   * A new token is the sign-in token when it answers a missing or invalid sign-in token; otherwise it
   * serves the refused operation only.
   */
  private roleFor(pending: Pending): TokenRole {
    return pending.plan.kind === 'sign_in' && pending.refusedRole !== 'step_up' ? 'sign_in' : 'step_up';
  }

  private succeeded(operation: Operation, body: unknown): void {
    const { view } = this.ports;
    const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const balance = fields['balance'];
    if (operation.method === 'GET' && typeof balance === 'number') {
      view.showBalance(String(fields['account'] ?? ''), balance);
      return;
    }
    if (operation.method === 'POST' && typeof balance === 'number') {
      const result = { to: String(fields['to'] ?? ''), amount: Number(fields['amount']), balance };
      view.showTransfer(result);
      view.showBalance(String(fields['from'] ?? ''), balance);
      return;
    }
    view.note(`Done: ${operation.purpose}.`, 'success');
  }
}

/** Explains, in plain words, why the person is sent to the identity provider. */
export function promptFor(
  plan: Exclude<StepUpPlan, { kind: 'give_up' }>,
  operation: Operation,
): SignInPrompt {
  const to = operation.purpose;
  if (plan.kind === 'sign_in' && plan.reason === 'no_token') {
    return {
      title: 'Sign in',
      explanation: `To ${to}, the bank needs to know who you are: it answered 401, asking for a token. Sign in at the identity provider with your username and password.`,
      action: 'Sign in',
    };
  }
  if (plan.kind === 'sign_in') {
    const why = plan.challenge.errorDescription ? ` (${plan.challenge.errorDescription})` : '';
    return {
      title: 'Sign in again',
      explanation: `The bank no longer accepts your sign-in: it answered 401 invalid_token${why}. Sign in again to ${to}.`,
      action: 'Sign in again',
    };
  }
  if (plan.kind === 'scope') {
    return {
      title: 'Confirm it is you',
      explanation:
        `To ${to}, the bank needs the permission "${plan.request.scope ?? ''}", which your sign-in does not include ` +
        '(it answered 403 insufficient_scope). Expect the identity provider to ask for a second factor, a one-time ' +
        'code from your authenticator: permissions that move money are granted only after one, so that a stolen ' +
        'password alone cannot move it.',
      action: 'Continue to the identity provider',
    };
  }
  const asked: string[] = [];
  if (plan.request.acrValues !== undefined) asked.push(`a login of class ${plan.request.acrValues}`);
  if (plan.request.maxAge !== undefined)
    asked.push(`a login in the last ${describeSeconds(Number(plan.request.maxAge))}`);
  return {
    title: 'Confirm it is you',
    explanation:
      `To ${to}, the bank needs a stronger or more recent sign-in (it answered 401 insufficient_user_authentication` +
      `${asked.length > 0 ? `, asking for ${asked.join(' and ')}` : ''}). The identity provider will ask for a second ` +
      'factor, a one-time code from your authenticator, so that a stolen password alone is not enough.',
    action: 'Continue with a second factor',
  };
}

function describeSeconds(seconds: number): string {
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60} minute${seconds === 60 ? '' : 's'}`;
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

function key(operation: Operation): string {
  return `${operation.method} ${operation.path}`;
}

function bodyError(body: unknown): string {
  const error =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['error'] : undefined;
  return typeof error === 'string' ? ` ${error}` : '';
}
