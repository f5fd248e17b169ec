import type { TokenGrant } from './token-response.js';

/** Which token a grant is: the ordinary sign-in, or one obtained for one operation after a challenge. */
export type TokenRole = 'sign_in' | 'step_up';

/** A held token and what it is used for, for the page's token list. */
export interface HeldToken {
  readonly grant: TokenGrant;
  readonly role: TokenRole;
  /** The operation a step-up token is used for (`POST /transfer`); undefined for the sign-in token. */
  readonly operation: string | undefined;
}

/** At most this many step-up tokens: one per operation, and the app has a handful of operations. */
const MAX_STEP_UP_TOKENS = 16;

/**
 * The tokens this page holds, in memory only (never localStorage: a script injected into the origin
 * could read it). The sign-in token serves every operation; a token obtained for exactly the scope an
 * operation's challenge named serves that operation only, so the powerful token is sent no further than
 * it must be, and the sign-in token keeps working for everything else.
 */
export class HeldTokens {
  private signIn: TokenGrant | undefined;
  private readonly stepUps = new Map<string, TokenGrant>();

  /** The token to send for `operation`: its step-up token, else the sign-in token, else none. */
  forOperation(operation: string): TokenGrant | undefined {
    return this.stepUps.get(operation) ?? this.signIn;
  }

  /** Keeps `grant` in `role`; a step-up token replaces the previous one for the same operation. */
  keep(grant: TokenGrant, role: TokenRole, operation: string): void {
    if (role === 'sign_in') {
      this.signIn = grant;
      return;
    }
    this.stepUps.delete(operation);
    while (this.stepUps.size >= MAX_STEP_UP_TOKENS) {
      const oldest = this.stepUps.keys().next().value;
      if (oldest === undefined) break;
      this.stepUps.delete(oldest);
    }
    this.stepUps.set(operation, grant);
  }

  /** Which role `grant` holds, or undefined when it is no longer held. */
  roleOf(grant: TokenGrant): TokenRole | undefined {
    if (this.signIn === grant) return 'sign_in';
    return [...this.stepUps.values()].includes(grant) ? 'step_up' : undefined;
  }

  /** Forgets `grant` wherever it is held (the server called it invalid). */
  drop(grant: TokenGrant): void {
    if (this.signIn === grant) this.signIn = undefined;
    for (const [operation, held] of this.stepUps) if (held === grant) this.stepUps.delete(operation);
  }

  /** Every held token, the sign-in token first. */
  list(): HeldToken[] {
    const held: HeldToken[] = [];
    if (this.signIn !== undefined) held.push({ grant: this.signIn, role: 'sign_in', operation: undefined });
    for (const [operation, grant] of this.stepUps) held.push({ grant, role: 'step_up', operation });
    return held;
  }
}
