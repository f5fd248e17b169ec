import { createHmac, randomBytes } from 'node:crypto';
import { cp, mkdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { DpopKey } from './dpop-proofs.js';
import { freePort } from './free-port.js';
import { installedBinary } from './installed-binary.js';
import { codeAt, CookieJar, exchangeCode, pkcePair } from './oauth-client.js';
import { repoRoot, startProcess, type KitProcess } from './process.js';
import { waitUntil } from './wait-until.js';

/**
 * A real Keycloak (the pinned distribution `scripts/install-keycloak.sh` puts in `.tools/keycloak`), with the
 * bank's realm imported from `test/fixtures/keycloak/bank-realm.json`: the public client `bank-cli` (PKCE),
 * the scopes `view:balance` and `transfer:funds`, the audience `https://my-banking-api`, and a step-up
 * browser flow by level of authentication: a password is level 1 (`urn:bank:pwd`), a one-time code on top
 * is level 2 (`urn:bank:mfa`, asked for by `acr_values`). The user `alice` has a password and a TOTP
 * credential whose secret the kit knows. The login pages are driven as a browser would, form by form.
 */

export const KEYCLOAK_VERSION = '26.7.3';
export const KEYCLOAK_RESOURCE = 'https://my-banking-api';
export const KEYCLOAK_PASSWORD_ACR = 'urn:bank:pwd';
export const KEYCLOAK_MFA_ACR = 'urn:bank:mfa';
const REALM_FILE = path.join(repoRoot, 'test', 'fixtures', 'keycloak', 'bank-realm.json');
const CLIENT_ID = 'bank-cli';
const REDIRECT_URI = 'http://127.0.0.1/callback';
const USER = { name: 'alice', password: 'alice-password-e2e', totpSecret: 'bank-e2e-totp-secret' };
const ADMIN = { name: 'admin', password: 'admin-e2e' };
/** Keycloak starts in some 15 s on a quiet machine (the realm import included); more under load. */
const START_TIMEOUT_MS = 120_000;

export interface StartedKeycloak {
  readonly process: KitProcess;
  /** `http://127.0.0.1:PORT/realms/bank`: the issuer, and the base of its discovery document. */
  readonly issuer: string;
  /**
   * An access token for alice from the authorization code flow through the login pages (PKCE; DPoP-bound
   * when `dpop` is given): a password, and the one-time code too when `acrValues` asks `urn:bank:mfa`.
   */
  token(options?: { acrValues?: string; dpop?: DpopKey }): Promise<string>;
  /** Rotates the realm's signing key: a new RSA key takes over (higher priority); the old one stays. */
  rotateKeys(): Promise<void>;
  stop(): Promise<void>;
}

/** The Keycloak home `scripts/install-keycloak.sh` made (throws, naming the script, when it is missing). */
function keycloakHome(): string {
  const script = installedBinary({
    name: 'Keycloak',
    envVar: 'KEYCLOAK_KC_SH',
    installedAt: `.tools/keycloak/keycloak-${KEYCLOAK_VERSION}/bin/kc.sh`,
    npmScript: 'keycloak:install',
    script: 'scripts/install-keycloak.sh',
  });
  return path.dirname(path.dirname(script));
}

/** Starts Keycloak on a free port of 127.0.0.1 with a fresh database and the bank's realm. */
export async function startKeycloak(): Promise<StartedKeycloak> {
  const home = keycloakHome();
  // A fresh dev-file database each run: the realm is imported as the fixture says, nothing left over.
  await rm(path.join(home, 'data'), { recursive: true, force: true });
  await mkdir(path.join(home, 'data', 'import'), { recursive: true });
  await cp(REALM_FILE, path.join(home, 'data', 'import', 'bank-realm.json'));
  const port = await freePort();
  const process_ = startProcess({
    name: 'keycloak',
    command: path.join(home, 'bin', 'kc.sh'),
    args: [
      'start',
      '--optimized',
      '--http-enabled=true',
      '--http-host=127.0.0.1',
      `--http-port=${port}`,
      '--hostname-strict=false',
      '--import-realm',
      '--log-level=warn',
    ],
    env: {
      ...process.env,
      KC_BOOTSTRAP_ADMIN_USERNAME: ADMIN.name,
      KC_BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      // A small heap: the suite needs one realm and a few logins.
      JAVA_OPTS_KC_HEAP: '-Xms128m -Xmx512m',
    },
  });
  const base = `http://127.0.0.1:${port}`;
  const issuer = `${base}/realms/bank`;
  try {
    await waitUntil(
      async () => {
        if (process_.exitReason() !== undefined)
          throw new Error(`Keycloak exited:\n${process_.outputTail()}`);
        return (await fetch(`${issuer}/.well-known/openid-configuration`).catch(() => undefined))?.status;
      },
      (status) => status === 200,
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 250, what: 'Keycloak serving the bank realm' },
    );
  } catch (error) {
    await process_.stop();
    throw error;
  }
  return {
    process: process_,
    issuer,
    token: (options = {}) => authorizationCodeFlow(issuer, options),
    rotateKeys: () => rotateRealmKeys(base),
    stop: async () => {
      await process_.stop(10_000);
    },
  };
}

async function authorizationCodeFlow(
  issuer: string,
  options: { acrValues?: string; dpop?: DpopKey },
): Promise<string> {
  const { verifier, challenge } = pkcePair();
  const authorize = new URL(`${issuer}/protocol/openid-connect/auth`);
  authorize.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid view:balance transfer:funds',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(options.acrValues === undefined ? {} : { acr_values: options.acrValues }),
  }).toString();
  const jar = new CookieJar();
  const post = (url: string, form: Record<string, string>) =>
    jar.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });

  let response = await jar.fetch(authorize.toString());
  let code: string | undefined;
  for (let page = 0; page < 6 && code === undefined; page += 1) {
    const location = response.headers.get('location');
    if (location !== null) {
      const url = new URL(location, issuer);
      code = codeAt(url, REDIRECT_URI);
      if (code === undefined) response = await jar.fetch(url.toString());
      continue;
    }
    const html = await response.text();
    const action = formAction(html);
    if (html.includes('name="otp"')) response = await post(action, { otp: totp(USER.totpSecret) });
    else if (html.includes('name="password"'))
      response = await post(action, { username: USER.name, password: USER.password, credentialId: '' });
    else
      throw new Error(
        `Keycloak showed a page the kit does not know (${response.status}):\n${html.slice(0, 2000)}`,
      );
  }
  if (code === undefined) throw new Error('the login did not end at the redirect URI');
  return exchangeCode(`${issuer}/protocol/openid-connect/token`, {
    code,
    verifier,
    redirectUri: REDIRECT_URI,
    clientId: CLIENT_ID,
    ...(options.dpop === undefined ? {} : { dpop: options.dpop }),
  });
}

/** The login page's form action, its HTML entities decoded. */
function formAction(html: string): string {
  const found = /<form[^>]*\saction="([^"]+)"/.exec(html)?.[1];
  if (found === undefined) throw new Error(`no form on Keycloak's page:\n${html.slice(0, 2000)}`);
  return found.replaceAll('&amp;', '&');
}

/** The TOTP code of now (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), as Keycloak's OTP policy says. */
function totp(secret: string, nowMs = Date.now()): string {
  const step = Buffer.alloc(8);
  step.writeBigUInt64BE(BigInt(Math.floor(nowMs / 30_000)));
  const mac = createHmac('sha1', Buffer.from(secret, 'utf8')).update(step).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, '0');
}

/** Adds a generated RSA key to the realm with a priority above the current one's (admin REST API). */
async function rotateRealmKeys(base: string): Promise<void> {
  const admin = await fetch(`${base}/realms/master/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: 'admin-cli',
      username: ADMIN.name,
      password: ADMIN.password,
    }),
  });
  const { access_token: adminToken } = (await admin.json()) as { access_token?: string };
  if (adminToken === undefined) throw new Error('Keycloak refused the admin login');
  const realm = (await (
    await fetch(`${base}/admin/realms/bank`, { headers: { authorization: `Bearer ${adminToken}` } })
  ).json()) as { id: string };
  const created = await fetch(`${base}/admin/realms/bank/components`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: `rotated-${randomBytes(3).toString('hex')}`,
      providerId: 'rsa-generated',
      providerType: 'org.keycloak.keys.KeyProvider',
      parentId: realm.id,
      config: {
        priority: ['1000'],
        enabled: ['true'],
        active: ['true'],
        algorithm: ['RS256'],
        keySize: ['2048'],
      },
    }),
  });
  if (created.status !== 201)
    throw new Error(`Keycloak refused the new key: ${created.status} ${await created.text()}`);
}
