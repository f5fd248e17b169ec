import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from '../e2e/cli-process.js';
import { writeDemoPolicyTrusting } from '../e2e/demo-policy.js';
import { repoRoot } from '../e2e/envoy-binary.js';
import { freePorts, startEnvoy, type RunningEnvoy } from '../e2e/envoy-process.js';
import { launchChromium } from './chromium.js';

/*
 * The bank's web app in real Chromium (Debian's, driven by Playwright), against real Envoy configured from
 * envoy/envoy.yaml, `authz serve` with the demo policy, the bank serving the built app (dist/web), and the
 * development identity provider. Every API call the page makes crosses Envoy and the sidecar; sign-in is the
 * authorization code flow with PKCE in a pop-up window. Screenshots of the key steps go to
 * test-results/screenshots/ (git-ignored; the README's come from there).
 */

const SCREENSHOTS = path.join(repoRoot, 'test-results', 'screenshots');
const STEP_TIMEOUT_MS = 15_000;

let envoy: RunningEnvoy;
let authz: RunningCli;
let bank: RunningCli;
let idp: RunningCli;
let browser: Browser;
let api: string;
let bankUrl: string;
let issuer: string;

/** Alice's balance as the ledger has it, asked of the bank directly (it trusts x-auth-subject from Envoy). */
async function ledgerBalance(): Promise<number> {
  const response = await fetch(`${bankUrl}/balance`, { headers: { 'x-auth-subject': 'alice' } });
  return ((await response.json()) as { balance: number }).balance;
}

/** As the page shows amounts: en-US, two decimals. */
function money(amount: number): string {
  return amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** Clicks the prompt's button and returns the sign-in window it opens. */
async function continueToIdp(page: Page): Promise<Page> {
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#prompt-continue')]);
  // The window opens blank within the click, then goes to the IdP once the PKCE challenge is computed.
  await popup.waitForURL((url) => url.pathname === '/authorize');
  return popup;
}

/** Opens the app in a fresh context (no cookies, no IdP session) and signs in as alice with her password. */
async function signedInPage(context: BrowserContext, name: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${api}/app/`);
  await page.locator('#prompt').waitFor({ state: 'visible' });
  expect(await page.textContent('#prompt-title')).toBe('Sign in');
  expect(await page.textContent('#last-status')).toBe('401');
  expect(await page.textContent('#last-challenge')).toBe('Bearer realm="bank-api"');
  await shot(page, `${name}-1-sign-in-needed`);

  const popup = await continueToIdp(page);
  expect(new URL(popup.url()).pathname).toBe('/authorize');
  await popup.fill('#username', 'alice');
  await popup.fill('#password', 'alice-password');
  await shot(popup, `${name}-2-idp-login`);
  await popup.click('#login');
  await popup.waitForEvent('close');

  await expect.poll(() => page.textContent('#last-status')).toBe('200');
  return page;
}

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const [listen, admin, authzPort, bankPort, idpPort] = await freePorts(5);
  api = `http://127.0.0.1:${listen}`;
  bankUrl = `http://127.0.0.1:${bankPort}`;
  issuer = `http://127.0.0.1:${idpPort}`;
  idp = await startCli([
    ...['dev-idp', '--listen', `127.0.0.1:${idpPort}`],
    ...['--redirect-uri', `${api}/app/callback.html`],
  ]);

  // The demo policy as shipped, trusting this run's identity provider (keys refetched within seconds).
  const policyFile = await writeDemoPolicyTrusting(issuer);

  authz = await startCli(['serve', '--policy', policyFile, '--listen', `127.0.0.1:${authzPort}`]);
  // The bank serves the built app (dist/web, from `npm run build`) and points it at this run's IdP.
  bank = await startCli(['bank', '--listen', `127.0.0.1:${bankPort}`, '--app-issuer', issuer]);
  envoy = await startEnvoy({ listen: listen!, admin: admin!, authz: authzPort!, bank: bankPort! });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await envoy?.stop();
  await Promise.all([authz?.stop(), bank?.stop(), idp?.stop()]);
});

describe('the bank in Chromium, through Envoy', () => {
  it('signs in, shows the balance, steps up with a second factor for a transfer, and the balance changes', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    const problems: string[] = [];
    try {
      const page = await signedInPage(context, 'transfer');
      page.on('console', (message) => {
        // Chromium logs every 4xx fetch; the API's 401 and 403 answers are the protocol at work.
        const expected = /^Failed to load resource: the server responded with a status of 40[13]\b/;
        if (message.type() === 'error' && !expected.test(message.text())) problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(error.message));
      const before = await ledgerBalance();
      await expect.poll(() => page.textContent('#balance')).toBe(money(before));
      expect(await page.textContent('#who')).toBe('Signed in as alice');
      await shot(page, 'transfer-3-balance');

      // The sign-in token lacks transfer:funds: Envoy answers 403 with the challenge, the app explains.
      await page.fill('#to', 'bob');
      await page.fill('#amount', '25');
      await page.click('#transfer');
      await page.locator('#prompt').waitFor({ state: 'visible' });
      expect(await page.textContent('#last-status')).toBe('403');
      expect(await page.textContent('#last-challenge')).toBe(
        'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds"',
      );
      expect(await page.textContent('#prompt-explanation')).toContain('second factor');
      expect(await page.textContent('#prompt-explanation')).toContain('"transfer:funds"');
      expect(await ledgerBalance()).toBe(before);
      await shot(page, 'transfer-4-step-up-explained');

      // The IdP remembers the password login and asks for the second factor only, saying why.
      const popup = await continueToIdp(page);
      const authorize = new URL(popup.url());
      expect(authorize.searchParams.get('scope')).toBe('transfer:funds');
      expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
      await popup.locator('#otp').waitFor();
      expect(await popup.textContent('#mfa-reason')).toContain('transfer:funds');
      const code = (await popup.textContent('#demo-otp'))?.trim() ?? '';
      expect(code).toMatch(/^\d{6}$/);
      await shot(popup, 'transfer-5-idp-second-factor');
      await popup.fill('#otp', code);
      await popup.click('#verify');
      await popup.waitForEvent('close');

      // The app retried the pending transfer once with the new token: 201, and the balance on screen moved.
      await expect.poll(() => page.textContent('#last-status'), { timeout: STEP_TIMEOUT_MS }).toBe('201');
      expect(await page.textContent('#transfer-result')).toBe(
        `Sent 25.00 to bob. Your balance is now ${money(before - 25)}.`,
      );
      expect(await page.textContent('#balance')).toBe(money(before - 25));
      expect(await ledgerBalance()).toBe(before - 25);
      expect(await page.textContent('#tokens')).toContain(
        'for POST /transfer only: scope "transfer:funds", acr urn:bank:mfa, amr pwd+mfa',
      );
      await shot(page, 'transfer-6-done');

      // The balance is read with the sign-in token again, which still works.
      await page.click('#refresh');
      await expect.poll(() => page.textContent('#last-request')).toBe('GET /balance');
      expect(await page.textContent('#last-status')).toBe('200');

      // Every call crossed Envoy and the sidecar, which logged each decision; no stray requests (favicon).
      const decisions = authz
        .logLines()
        .filter((line) => line['event'] === 'decision')
        .map(
          (line) =>
            `${String(line['status'])} ${String(line['reason'])} ${String(line['method'])} ${String(line['path'])}`,
        );
      expect(decisions).toEqual(
        expect.arrayContaining([
          '401 credentials_missing GET /balance',
          '200 allowed GET /balance',
          '403 insufficient_scope POST /transfer',
          '200 allowed POST /transfer',
          '200 allowed GET /app/config.json',
          '200 allowed GET /app/callback.html',
        ]),
      );
      expect(decisions.filter((decision) => !/ \/(app\/|balance$|transfer$)/.test(decision))).toEqual([]);

      // Tokens stay in memory: nothing in web storage, and the page broke no CSP rule.
      expect(await page.evaluate('[localStorage.length, sessionStorage.length]')).toEqual([0, 0]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a wrong one-time code keeps the user on the MFA page, and no money moves', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    try {
      const page = await signedInPage(context, 'wrong-code');
      const before = await ledgerBalance();
      await page.fill('#amount', '40');
      await page.click('#transfer');
      await page.locator('#prompt').waitFor({ state: 'visible' });

      const popup = await continueToIdp(page);
      await popup.locator('#otp').waitFor();
      const code = (await popup.textContent('#demo-otp'))?.trim() ?? '';
      const wrong = code === '000000' ? '111111' : '000000';
      await popup.fill('#otp', wrong);
      await popup.click('#verify');
      await popup.locator('#error').waitFor();
      expect(await popup.textContent('#error')).toContain('wrong');
      expect(await popup.locator('#otp').count()).toBe(1); // still the MFA page
      await shot(popup, 'wrong-code-idp-refuses');

      expect(await ledgerBalance()).toBe(before);
      expect(await page.textContent('#transfer-result')).toBe('');
      expect(await page.textContent('#last-status')).toBe('403');

      // Giving up: the person closes the window; the app says nothing was sent.
      await popup.close();
      await expect
        .poll(() => page.textContent('#message'), { timeout: STEP_TIMEOUT_MS })
        .toContain('Nothing was sent to the bank');
      expect(await ledgerBalance()).toBe(before);
    } finally {
      await context.close();
    }
  });

  it('401 invalid_token after the signing key is retired: the app asks to sign in again, and the IdP session makes it one click', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    try {
      const page = await signedInPage(context, 'invalid-token');
      const rotated = await fetch(`${issuer}/dev/rotate-keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ retire_previous: true }),
      });
      expect(rotated.status).toBe(200);

      // Once the sidecar's cached key set expires (10 s here), the page's token no longer verifies.
      await expect
        .poll(
          async () => {
            if (await page.locator('#prompt').isHidden()) await page.click('#refresh');
            return page.textContent('#last-challenge');
          },
          { timeout: 30_000, interval: 1_000 },
        )
        .toContain('error="invalid_token"');
      expect(await page.textContent('#last-status')).toBe('401');
      expect(await page.textContent('#prompt-title')).toBe('Sign in again');
      expect(await page.textContent('#tokens')).toBe('none');
      await shot(page, 'invalid-token-sign-in-again');

      // The IdP remembers the password login: the pop-up comes straight back with a code.
      const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#prompt-continue')]);
      await popup.waitForEvent('close');
      await expect.poll(() => page.textContent('#last-status'), { timeout: STEP_TIMEOUT_MS }).toBe('200');
      expect(await page.textContent('#tokens')).toContain(
        'sign-in token, for every call: scope "openid view:balance"',
      );
    } finally {
      await context.close();
    }
  }, 60_000);

  it('the callback page opened on its own relays nothing and takes the code out of the address bar', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${api}/app/callback.html?code=stolen&state=x&iss=${encodeURIComponent(issuer)}`);
      await expect.poll(() => page.textContent('#callback-status')).toContain('not part of a sign-in');
      expect(new URL(page.url()).search).toBe('');
    } finally {
      await context.close();
    }
  });

  it('serves the app through Envoy without a token, with its security headers', async () => {
    const response = await fetch(`${api}/app/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const config = (await (await fetch(`${api}/app/config.json`)).json()) as Record<string, unknown>;
    expect(config['client_id']).toBe('bank-spa');
    // Only GET and HEAD are public: anything else under /app/ is refused by the sidecar.
    expect((await fetch(`${api}/app/`, { method: 'POST' })).status).toBe(403);
  });
});
