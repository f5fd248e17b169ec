import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from '../../src/client/parse-www-authenticate.js';
import { writeDemoPolicyTrusting } from '../kit/demo-policy.js';
import { startEnvoyStack, type EnvoyStack } from '../kit/envoy-stack.js';
import { freePort } from '../kit/free-port.js';
import { repoRoot, startCliAndWait, type KitProcess } from '../kit/process.js';
import { launchChromium, whenClosed } from './chromium.js';

/*
 * The bank's web app in real Chromium (Debian's, driven by Playwright), against real Envoy configured from
 * envoy/envoy.yaml, `authz serve` with the demo policy, the bank serving the built app (dist/web), and the
 * development identity provider. Every API call the page makes crosses Envoy and the sidecar; sign-in is the
 * authorization code flow with PKCE in a pop-up window. Tokens are DPoP-bound (RFC 9449) to a non-extractable
 * key the page keeps in IndexedDB; every API call carries `Authorization: DPoP` and a fresh proof. Screenshots
 * of the key steps go to test-results/screenshots/ (git-ignored; docs/images/, shown in docs/demo.md, come from there).
 */

const SCREENSHOTS = path.join(repoRoot, 'test-results', 'screenshots');
const STEP_TIMEOUT_MS = 15_000;

let stack: EnvoyStack;
let idp: KitProcess;
let browser: Browser;
let api: string;
let bankUrl: string;
let issuer: string;
let tokenEndpoint: string;

/** A request the page sent, with the headers DPoP is about (read from Chromium, after the fact). */
interface SentRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  readonly dpop: string | undefined;
}

/**
 * Records the calls to the bank API and the identity provider's token endpoint made in `context` (only the
 * app makes them; the sign-in window does not). Chromium reports the headers it really sent (allHeaders),
 * Authorization and DPoP included.
 */
function recordRequests(context: BrowserContext): () => Promise<SentRequest[]> {
  const seen: Promise<SentRequest>[] = [];
  context.on('request', (request: Request) => {
    const url = new URL(request.url());
    const toApi = url.origin === new URL(api).origin && /^\/(balance|transfer)$/.test(url.pathname);
    if (!toApi && url.href !== tokenEndpoint) return;
    seen.push(
      request.allHeaders().then((headers) => ({
        method: request.method(),
        url: url.href,
        authorization: headers['authorization'],
        dpop: headers['dpop'],
      })),
    );
  });
  return () => Promise.all(seen);
}

/**
 * The challenges of a WWW-Authenticate value as the page shows it (fetch joins several lines with ", "),
 * by lower-cased scheme: `{ bearer: {realm: ...}, dpop: {algs: ..., error: ...} }`.
 */
function challengesIn(value: string | null): Record<string, Record<string, string>> {
  const parsed = parseWwwAuthenticate(value ?? '');
  if (!parsed.ok) throw new Error(`unreadable challenge ${value}: ${parsed.error.message}`);
  return Object.fromEntries(
    parsed.challenges.map((challenge) => [
      challenge.scheme.toLowerCase(),
      Object.fromEntries(challenge.params),
    ]),
  );
}

/** A DPoP proof's header and claims, decoded (the sidecar verifies them; the test reads what was sent). */
function decodeProof(proof: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  return { header: decodeProtectedHeader(proof) as Record<string, unknown>, claims: decodeJwt(proof) };
}

/** `ath`: the base64url SHA-256 of the access token (RFC 9449 section 4.2). */
function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** The page's stored DPoP key, as seen from inside the page: its flags, and its public half as a JWK. */
interface StoredKey {
  readonly privateExtractable: boolean;
  readonly privateType: string;
  readonly usages: string[];
  readonly exportRefused: boolean;
  readonly publicJwk: JWK;
}

// Runs in the page (a string: this file is compiled without the DOM's types). Reads the record the app
// keeps in IndexedDB and tries to export its private key, which WebCrypto must refuse.
const READ_STORED_KEY = `(async () => {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open('bank-app');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const pair = await new Promise((resolve, reject) => {
    const read = db.transaction('dpop-keys').objectStore('dpop-keys').get('current');
    read.onsuccess = () => resolve(read.result);
    read.onerror = () => reject(read.error);
  });
  db.close();
  const exportRefused = await crypto.subtle.exportKey('jwk', pair.privateKey).then(() => false, () => true);
  return {
    privateExtractable: pair.privateKey.extractable,
    privateType: pair.privateKey.type,
    usages: [...pair.privateKey.usages],
    exportRefused,
    publicJwk: await crypto.subtle.exportKey('jwk', pair.publicKey),
  };
})()`;

function storedDpopKey(page: Page): Promise<StoredKey> {
  return page.evaluate(READ_STORED_KEY) as Promise<StoredKey>;
}

/** The start of the key thumbprint the page shows (`#dpop-key`): what the token list names too. */
async function shownThumbprint(page: Page): Promise<string> {
  const text = (await page.textContent('#dpop-key')) ?? '';
  const match = /thumbprint ([A-Za-z0-9_-]{8})…/.exec(text);
  if (match === null) throw new Error(`#dpop-key shows no thumbprint: ${text}`);
  return match[1]!;
}

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
  // One bare challenge per scheme the route accepts (RFC 9449 section 7.1); DPoP's names its algorithms.
  const challenges = challengesIn(await page.textContent('#last-challenge'));
  expect(Object.keys(challenges).sort()).toEqual(['bearer', 'dpop']);
  expect(challenges['bearer']).toEqual({ realm: 'bank-api' });
  expect(challenges['dpop']!['algs']?.split(' ')).toContain('ES256');
  expect(challenges['dpop']).not.toHaveProperty('error');
  expect(await page.textContent('#dpop-key')).toMatch(/not extractable, kept in this browser \(IndexedDB\)$/);
  await shot(page, `${name}-1-sign-in-needed`);

  const popup = await continueToIdp(page);
  expect(new URL(popup.url()).pathname).toBe('/authorize');
  await popup.fill('#username', 'alice');
  await popup.fill('#password', 'alice-password');
  await shot(popup, `${name}-2-idp-login`);
  const closed = whenClosed(popup);
  await popup.click('#login');
  await closed;

  await expect.poll(() => page.textContent('#last-status')).toBe('200');
  expect(await page.textContent('#tokens')).toContain(
    `bound to this browser's key (DPoP, thumbprint ${await shownThumbprint(page)}…)`,
  );
  return page;
}

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const idpPort = await freePort();
  issuer = `http://127.0.0.1:${idpPort}`;
  stack = await startEnvoyStack({
    // The IdP redirects to the app behind this run's Envoy, so it starts once Envoy's port is known.
    policyFile: async ({ origin }) => {
      api = origin;
      idp = (
        await startCliAndWait([
          ...['dev-idp', '--listen', `127.0.0.1:${idpPort}`],
          ...['--redirect-uri', `${api}/app/callback.html`],
        ])
      ).process;
      // The demo policy as shipped, trusting this run's identity provider (keys refetched within seconds),
      // with this run's Envoy as its public origin: the page's proofs name it in htu (RFC 9449 section 4.3).
      return writeDemoPolicyTrusting(issuer, api);
    },
    // The bank serves the built app (dist/web, from `npm run build`) and points it at this run's IdP.
    upstream: { bankArgs: ['--app-issuer', issuer] },
  });
  bankUrl = `http://127.0.0.1:${stack.upstreamPort}`;
  browser = await launchChromium();
  const discovery = await fetch(`${issuer}/.well-known/openid-configuration`);
  tokenEndpoint = ((await discovery.json()) as { token_endpoint: string }).token_endpoint;
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await idp?.stop();
});

describe('the bank in Chromium, through Envoy', () => {
  it('signs in, shows the balance, steps up with a second factor for a transfer, and the balance changes, all with DPoP-bound tokens', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    const problems: string[] = [];
    try {
      const requests = recordRequests(context);
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
      // The token went as DPoP, so the error comes under the DPoP scheme (RFC 9449 section 7.1).
      const refusal = challengesIn(await page.textContent('#last-challenge'));
      expect(refusal['dpop']).toMatchObject({ error: 'insufficient_scope', scope: 'transfer:funds' });
      expect(refusal['bearer'] ?? {}).not.toHaveProperty('error');
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
      const closed = whenClosed(popup);
      await popup.click('#verify');
      await closed;

      // The app retried the pending transfer once with the new token: 201, and the balance on screen moved.
      await expect.poll(() => page.textContent('#last-status'), { timeout: STEP_TIMEOUT_MS }).toBe('201');
      expect(await page.textContent('#transfer-result')).toBe(
        `Sent 25.00 to bob. Your balance is now ${money(before - 25)}.`,
      );
      expect(await page.textContent('#balance')).toBe(money(before - 25));
      expect(await ledgerBalance()).toBe(before - 25);
      const thumbprint = await shownThumbprint(page);
      expect(await page.textContent('#tokens')).toContain(
        'for POST /transfer only: scope "transfer:funds", acr urn:bank:mfa, amr pwd+mfa, ' +
          `bound to this browser's key (DPoP, thumbprint ${thumbprint}…)`,
      );
      await shot(page, 'transfer-6-done');

      // The balance is read with the sign-in token again, which still works.
      await page.click('#refresh');
      await expect.poll(() => page.textContent('#last-request')).toBe('GET /balance');
      expect(await page.textContent('#last-status')).toBe('200');

      // Every call crossed Envoy and the sidecar, which logged each decision; no stray requests (favicon).
      const decisions = stack.authz
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

      // The key: in IndexedDB, non-extractable (even the page cannot export it), the one the page shows.
      const key = await storedDpopKey(page);
      expect(key).toMatchObject({
        privateExtractable: false,
        privateType: 'private',
        usages: ['sign'],
        exportRefused: true,
      });
      expect(key.publicJwk).not.toHaveProperty('d');
      const jkt = await calculateJwkThumbprint(key.publicJwk);
      expect(jkt.slice(0, 8)).toBe(thumbprint);

      // What went over the wire: both token requests carried a proof (htm POST, htu the token endpoint, no
      // ath); every API call with a token carried Authorization: DPoP, a fresh proof over its method, URL and
      // token, from that key; and every token was bound to it (cnf.jkt).
      const sent = await requests();
      const tokenRequests = sent.filter((request) => request.url === tokenEndpoint);
      expect(tokenRequests).toHaveLength(2);
      for (const request of tokenRequests) {
        const { header, claims } = decodeProof(request.dpop ?? '');
        expect(header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256' });
        expect(await calculateJwkThumbprint(header['jwk'] as JWK)).toBe(jkt);
        expect(claims).toMatchObject({ htm: 'POST', htu: tokenEndpoint });
        expect(claims).not.toHaveProperty('ath');
      }
      const apiCalls = sent.filter((request) => request.url !== tokenEndpoint);
      const withToken = apiCalls.filter((request) => request.authorization !== undefined);
      expect(apiCalls.filter((request) => request.authorization === undefined)).toHaveLength(1); // the first
      expect(withToken.length).toBeGreaterThanOrEqual(4);
      const jtis = new Set<unknown>();
      for (const request of withToken) {
        expect(request.authorization).toMatch(/^DPoP [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
        const token = request.authorization!.slice('DPoP '.length);
        const { header, claims } = decodeProof(request.dpop ?? '');
        expect(header['typ']).toBe('dpop+jwt');
        expect(await calculateJwkThumbprint(header['jwk'] as JWK)).toBe(jkt);
        expect(claims).toMatchObject({ htm: request.method, htu: request.url, ath: tokenHash(token) });
        expect((decodeJwt(token)['cnf'] as { jkt?: unknown } | undefined)?.jkt).toBe(jkt);
        jtis.add(claims['jti']);
      }
      expect(jtis.size).toBe(withToken.length);

      // A stolen transfer token is useless without its key: replayed with its proof (seen before), without
      // a proof, or as a Bearer token, the sidecar refuses it, and no money moves.
      const transfer = withToken.findLast((request) => request.method === 'POST');
      const token = transfer!.authorization!.slice('DPoP '.length);
      const replay = (headers: Record<string, string>) =>
        fetch(`${api}/transfer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ to: 'mallory', amount: 25 }),
        });
      const replayed = await replay({ authorization: transfer!.authorization!, dpop: transfer!.dpop! });
      expect(replayed.status).toBe(401);
      expect(challengesIn(replayed.headers.get('www-authenticate'))['dpop']).toMatchObject({
        error: 'invalid_dpop_proof',
      });
      expect((await replay({ authorization: `DPoP ${token}` })).status).toBe(401);
      expect((await replay({ authorization: `Bearer ${token}` })).status).toBe(401);
      expect(await ledgerBalance()).toBe(before - 25);
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
      await whenClosed(popup);
      await expect.poll(() => page.textContent('#last-status'), { timeout: STEP_TIMEOUT_MS }).toBe('200');
      expect(await page.textContent('#tokens')).toContain(
        'sign-in token, for every call: scope "openid view:balance"',
      );
    } finally {
      await context.close();
    }
  }, 60_000);

  it('keeps its DPoP key over a reload: tokens are gone, the new one is bound to the same key', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    try {
      const page = await signedInPage(context, 'reload');
      const before = await shownThumbprint(page);
      const stored = await calculateJwkThumbprint((await storedDpopKey(page)).publicJwk);

      await page.reload();
      await page.locator('#prompt').waitFor({ state: 'visible' });
      expect((await page.textContent('#tokens'))?.trim()).toBe('none');
      expect(await shownThumbprint(page)).toBe(before);

      // The IdP remembers the login: one click, and the new token names the same key.
      const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#prompt-continue')]);
      await whenClosed(popup);
      await expect.poll(() => page.textContent('#last-status'), { timeout: STEP_TIMEOUT_MS }).toBe('200');
      expect(await page.textContent('#tokens')).toContain(`thumbprint ${before}…`);
      expect(await calculateJwkThumbprint((await storedDpopKey(page)).publicJwk)).toBe(stored);
    } finally {
      await context.close();
    }
  });

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
