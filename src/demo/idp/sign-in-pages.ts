import { DEMO_USERS } from './demo-users.js';
import { LOGIN_PATH, MFA_PATH } from './discovery-document.js';
import { escapeHtml, htmlPage } from './html-page.js';
import type { MfaReason } from './mfa-rule.js';
import { SPA_CLIENT_ID } from './protocol-values.js';
import type { HtmlReply } from './reply.js';

/** What the sign-in pages show about the request. Development only. */
export interface SignInView {
  /** The pending sign-in, posted back in a hidden field. */
  readonly txn: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** A message for the person (a wrong password, a wrong code); undefined when none. */
  readonly error?: string;
}

const CLIENT_NAMES: Readonly<Record<string, string>> = {
  [SPA_CLIENT_ID]: 'The bank demo app',
};

const SCOPE_WORDS: Readonly<Record<string, string>> = {
  openid: 'know who you are',
  'view:balance': 'see your balance',
  'transfer:funds': 'transfer funds',
};

/** The password form (`POST /authorize/login`). Development only. */
export function loginPage(view: SignInView, headers: Readonly<Record<string, string>>): HtmlReply {
  const users = [...DEMO_USERS]
    .map(([user, password]) => `<code>${escapeHtml(user)}</code> / <code>${escapeHtml(password)}</code>`)
    .join(', ');
  return htmlPage(
    200,
    'Log in',
    `<h1>Log in</h1>
${asking(view)}
${errorLine(view.error)}
<form method="post" action="${LOGIN_PATH}">
<input type="hidden" name="txn" value="${escapeHtml(view.txn)}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="login" type="submit">Log in</button>
</form>
<p>Demo users: ${users}.</p>`,
    headers,
  );
}

/** What the MFA page explains and shows. Development only. */
export interface MfaView extends SignInView {
  readonly reasons: readonly MfaReason[];
  readonly maxAgeSeconds: number | undefined;
  /** The pending one-time code, shown in the demo authenticator box. */
  readonly code: string;
}

/**
 * The one-time code form (`POST /authorize/mfa`), with the simulated authenticator beside it. The code
 * field has no `pattern`: the server judges every code, and counts wrong ones. Development only.
 */
export function mfaPage(view: MfaView, headers: Readonly<Record<string, string>>): HtmlReply {
  const reasons = view.reasons.map(
    (reason) => `<p>${escapeHtml(reasonText(reason, view.maxAgeSeconds))}</p>`,
  );
  return htmlPage(
    200,
    'Second factor required',
    `<h1>Second factor required</h1>
${asking(view)}
<div id="mfa-reason">${reasons.join('')}</div>
${errorLine(view.error)}
<div class="dev"><strong>Demo authenticator (development only)</strong>
<p>Stands in for your phone. Your code: <span id="demo-otp">${escapeHtml(view.code)}</span></p></div>
<form method="post" action="${MFA_PATH}">
<input type="hidden" name="txn" value="${escapeHtml(view.txn)}">
<label for="otp">6-digit code</label>
<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button id="verify" type="submit">Verify</button>
</form>`,
    headers,
  );
}

/** A sign-in that cannot go on and cannot be redirected to the app. Development only. */
export function errorPage(
  status: number,
  message: string,
  headers: Readonly<Record<string, string>>,
): HtmlReply {
  return htmlPage(
    status,
    'Sign-in error',
    `<h1>Sign-in error</h1>\n<p id="error">${escapeHtml(message)}</p>`,
    headers,
  );
}

function asking(view: SignInView): string {
  const scopes = view.scopes.map(
    (scope) => `<li>${escapeHtml(SCOPE_WORDS[scope] ?? scope)} (<code>${escapeHtml(scope)}</code>)</li>`,
  );
  const name = CLIENT_NAMES[view.clientId] ?? 'An app';
  return `<p>${escapeHtml(name)} (<code>${escapeHtml(view.clientId)}</code>) asks to:</p>\n<ul>${scopes.join('')}</ul>`;
}

function errorLine(error: string | undefined): string {
  return error === undefined ? '' : `<p id="error" role="alert">${escapeHtml(error)}</p>`;
}

function reasonText(reason: MfaReason, maxAgeSeconds: number | undefined): string {
  switch (reason) {
    case 'scope':
      return 'The bank app asked for permission to transfer funds (transfer:funds). This bank grants it only after a second factor.';
    case 'acr_values':
      return 'The bank asked for a login with a second factor (urn:bank:mfa).';
    case 'max_age':
      return `The bank asked for a fresh login (within the last ${maxAgeSeconds ?? 0} seconds).`;
  }
}
