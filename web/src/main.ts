import { parseAppConfig, type AppConfig } from './app-config.js';
import { bankApi } from './bank-api.js';
import { BankSession, type Operation } from './bank-session.js';
import { DpopFetch } from './dpop-fetch.js';
import { loadDpopKey, type AppDpopKey } from './dpop-key-store.js';
import { indexedDbKeyPairStorage } from './indexed-db-key-storage.js';
import { jsonBody } from './json-body.js';
import { PageView } from './page-view.js';
import { popupSignIn } from './popup-sign-in.js';
import { readProviderMetadata, type ProviderEndpoints } from './provider-metadata.js';
import './styles.css';

const BALANCE: Operation = { method: 'GET', path: '/balance', purpose: 'see your balance' };
const AMOUNT = /^\d{1,9}(\.\d{1,2})?$/; // what the bank accepts: up to 2 decimals

const MAX_DOCUMENT_CHARS = 64 * 1024; // the app config and a discovery document are a few KiB

async function fetchJson(url: string): Promise<unknown> {
  const response = await fetch(url, {
    cache: 'no-store',
    credentials: 'omit',
    redirect: 'error',
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const json = await jsonBody(response, MAX_DOCUMENT_CHARS);
  if (json === undefined) throw new Error(`${url} did not answer a JSON document`);
  return json;
}

async function loadSettings(): Promise<{ config: AppConfig; endpoints: ProviderEndpoints }> {
  const config = parseAppConfig(await fetchJson(new URL('config.json', document.baseURI).href));
  // OpenID Connect Discovery 1.0 section 4: the issuer without a trailing slash, then the well-known path.
  const discovery = `${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  return { config, endpoints: readProviderMetadata(await fetchJson(discovery), config.issuer) };
}

function input(id: string): HTMLInputElement {
  const element = document.getElementById(id);
  if (!(element instanceof HTMLInputElement)) throw new Error(`the page has no input #${id}`);
  return element;
}

async function start(): Promise<void> {
  const view = new PageView(document);
  let settings: { config: AppConfig; endpoints: ProviderEndpoints };
  let dpopKey: AppDpopKey;
  try {
    settings = await loadSettings();
    // One key for every token this browser gets, kept across reloads (IndexedDB stores the non-extractable
    // CryptoKey itself); without IndexedDB, a key for this page alone. WebCrypto exists in secure contexts
    // only (https, or http on a loopback address), as the PKCE challenge already requires.
    const storage = typeof indexedDB === 'undefined' ? undefined : indexedDbKeyPairStorage(indexedDB);
    dpopKey = await loadDpopKey(storage);
  } catch (error) {
    view.note(`The app cannot start: ${(error as Error).message}`, 'error');
    return;
  }
  const { key, persisted } = dpopKey;
  view.showDpopKey(key.thumbprint, persisted);
  const dpop = new DpopFetch(key);
  const redirectUri = new URL('callback.html', document.baseURI).href;
  const session = new BankSession({
    callApi: bankApi(dpop, document.baseURI),
    signIn: popupSignIn(settings.config, settings.endpoints, redirectUri, dpop),
    signInScope: settings.config.scope,
    view,
  });
  view.note(
    `Identity provider: ${settings.config.issuer}. Tokens are kept in this page's memory only, bound to ` +
      "this browser's DPoP key.",
    'info',
  );

  document.getElementById('refresh')?.addEventListener('click', () => void session.run(BALANCE));
  document.getElementById('prompt-continue')?.addEventListener('click', () => void session.continuePending());
  document.getElementById('prompt-cancel')?.addEventListener('click', () => session.cancelPending());
  document.getElementById('transfer-form')?.addEventListener('submit', (event) => {
    event.preventDefault();
    const to = input('to').value.trim();
    const amount = input('amount').value.trim();
    if (to === '' || !AMOUNT.test(amount) || Number(amount) <= 0) {
      view.note('Enter who to pay and an amount like 25 or 12.50.', 'error');
      return;
    }
    const transfer: Operation = {
      method: 'POST',
      path: '/transfer',
      body: { to, amount: Number(amount) },
      purpose: `transfer ${amount} to ${to}`,
    };
    void session.run(transfer);
  });
  await session.run(BALANCE);
}

void start();
