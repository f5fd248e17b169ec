import type { ApiAnswer, Operation, SessionView, SignInPrompt } from './bank-session.js';
import type { HeldToken } from './held-tokens.js';
import { describeBinding, summarizeToken } from './token-summary.js';

const MAX_NOTES = 50; // the activity list is a view, not a log: older lines fall off

/**
 * The page, as the session sees it. Text goes in with `textContent` only, never as HTML: balances, error
 * descriptions and challenge values come from servers.
 */
export class PageView implements SessionView {
  /** The thumbprint of this browser's DPoP key, once it is loaded: tokens bound to it are described so. */
  private keyThumbprint = '';

  constructor(private readonly document: Document) {}

  /** Shows which key proofs are signed with: the start of its thumbprint, and whether it outlives the page. */
  showDpopKey(thumbprint: string, persisted: boolean): void {
    this.keyThumbprint = thumbprint;
    const kept = persisted ? 'kept in this browser (IndexedDB)' : 'kept in this page only';
    this.text('dpop-key', `ES256, thumbprint ${thumbprint.slice(0, 8)}…, not extractable, ${kept}`);
  }

  showAnswer(operation: Operation, answer: ApiAnswer): void {
    this.text('last-request', `${operation.method} ${operation.path}`);
    this.text('last-status', String(answer.status));
    this.text('last-challenge', answer.challenge ?? '(none)');
  }

  showBalance(account: string, balance: number): void {
    this.text('who', account === '' ? 'Signed in' : `Signed in as ${account}`);
    this.text('balance', formatMoney(balance));
  }

  showTransfer(result: { to: string; amount: number; balance: number }): void {
    const message = `Sent ${formatMoney(result.amount)} to ${result.to}. Your balance is now ${formatMoney(result.balance)}.`;
    this.text('transfer-result', message);
    this.note(message, 'success');
  }

  showPrompt(prompt: SignInPrompt | undefined): void {
    const section = this.element('prompt');
    section.hidden = prompt === undefined;
    if (prompt === undefined) return;
    // The prompt is what matters now: an older status line next to it would only confuse.
    this.text('message', '');
    this.text('prompt-title', prompt.title);
    this.text('prompt-explanation', prompt.explanation);
    this.text('prompt-continue', prompt.action);
    this.element('prompt-continue').focus();
  }

  showTokens(tokens: readonly HeldToken[]): void {
    const list = this.element('tokens');
    list.replaceChildren(
      ...tokens.map((held) => {
        const summary = summarizeToken(held.grant.accessToken);
        const item = this.document.createElement('li');
        const use =
          held.role === 'sign_in' ? 'sign-in token, for every call' : `for ${held.operation ?? ''} only`;
        const amr = summary.amr.length > 0 ? summary.amr.join('+') : '-';
        const binding = describeBinding(held.grant.tokenType, summary, this.keyThumbprint);
        item.textContent = `${use}: scope "${held.grant.scopes.join(' ')}", acr ${summary.acr ?? '-'}, amr ${amr}, ${binding}`;
        return item;
      }),
    );
    if (tokens.length === 0) list.replaceChildren(this.document.createTextNode('none'));
  }

  note(message: string, tone: 'info' | 'success' | 'error'): void {
    const latest = this.element('message');
    latest.textContent = message;
    latest.dataset['tone'] = tone;
    const item = this.document.createElement('li');
    item.textContent = message;
    item.dataset['tone'] = tone;
    const activity = this.element('activity');
    activity.prepend(item);
    while (activity.children.length > MAX_NOTES) activity.lastElementChild?.remove();
  }

  private text(id: string, value: string): void {
    this.element(id).textContent = value;
  }

  private element(id: string): HTMLElement {
    const element = this.document.getElementById(id);
    if (element === null) throw new Error(`the page has no #${id}`);
    return element;
  }
}

function formatMoney(amount: number): string {
  return amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
