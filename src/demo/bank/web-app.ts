import { lstat, readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the single-page app is served from, behind Envoy's public `/app/**` route. */
export const APP_PREFIX = '/app/';

/** The built app beside the compiled server: `dist/web`, seen from `dist/bank/web-app.js`. */
export const BUILT_APP_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

/** The app's public client at the development identity provider (`authz dev-idp` registers it). */
export const WEB_APP_CLIENT_ID = 'bank-spa';

/** What the app asks for at its ordinary sign-in, as the reference scenario's app does. */
export const WEB_APP_SIGN_IN_SCOPE = 'openid view:balance';

/** The sign-in settings the app reads from `/app/config.json`. */
export interface WebAppSettings {
  /** The identity provider's issuer (its endpoints are discovered). */
  readonly issuer: string;
  readonly clientId: string;
  readonly audience: string;
  /** The scope of the ordinary, password-only sign-in. */
  readonly scope: string;
}

/** One file, ready to send. */
export interface WebAppFile {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/** Why the app's files cannot be served; `authz bank` refuses to start rather than serve half an app. */
export class WebAppError extends Error {
  override readonly name = 'WebAppError';
  readonly code = 'ERR_WEB_APP';
}

// A built app is a few dozen files and well under a megabyte: anything far larger is the wrong folder.
const MAX_FILES = 256;
const MAX_TOTAL_BYTES = 8 * 1024 * 1024; // 8 MiB
// Names a URL can carry as they are: no percent-decoding is ever needed to find a file.
const SERVABLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Reads the built app (`dist/web`) into memory once, at start-up. Requests are answered by exact lookup
 * in that map, so no request path ever reaches the file system: `..`, encoded slashes and symlinks have
 * nothing to traverse. `/app/config.json` is generated from `settings`.
 *
 * @returns a lookup from request path (query removed) to file; `/app/` is `index.html`.
 * @throws WebAppError when the folder is missing, has no index.html, or is larger than an app should be.
 */
export async function loadWebApp(
  dir: string,
  settings: WebAppSettings,
): Promise<(path: string) => WebAppFile | undefined> {
  const files = new Map<string, WebAppFile>();
  const security = securityHeaders(settings.issuer);
  let totalBytes = 0;
  for (const file of await listFiles(dir)) {
    const name = relative(dir, file).split(sep).join('/');
    const body = await readFile(file);
    totalBytes += body.length;
    // listFiles has bounded the count already; the bytes are known only once read.
    if (totalBytes > MAX_TOTAL_BYTES)
      throw new WebAppError(`${dir} holds more than ${MAX_TOTAL_BYTES} bytes: not a built app`);
    files.set(APP_PREFIX + name, {
      body,
      headers: {
        'content-type': CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
        // Bundler output under assets/ has content hashes in its names; everything else is revalidated.
        'cache-control': name.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        ...security,
      },
    });
  }
  const index = files.get(`${APP_PREFIX}index.html`);
  if (index === undefined)
    throw new WebAppError(`${dir} has no index.html: build the app with "npm run build"`);
  files.set(APP_PREFIX, index);
  const config = Buffer.from(
    JSON.stringify({
      issuer: settings.issuer,
      client_id: settings.clientId,
      audience: settings.audience,
      scope: settings.scope,
    }),
  );
  files.set(`${APP_PREFIX}config.json`, {
    body: config,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-cache', ...security },
  });
  return (path) => files.get(path);
}

/**
 * Headers on every file of the app. The CSP allows scripts and styles from the app's own origin only and
 * network calls to the API (same origin) and the identity provider; the pages may not be framed
 * (clickjacking) and send no Referer (the callback URL carries an authorization code until it is read).
 * DPoP (RFC 9449) needs nothing more: WebCrypto signs the proofs and IndexedDB keeps the key, neither of
 * which CSP governs, and the proofs travel as headers on the same two connections.
 */
function securityHeaders(issuer: string): Record<string, string> {
  const idpOrigin = new URL(issuer).origin;
  return {
    'content-security-policy': [
      "default-src 'self'",
      `connect-src 'self' ${idpOrigin}`,
      "img-src 'self' data:",
      "object-src 'none'",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  };
}

/** Every regular file under `dir`; symlinks and oddly named entries are skipped, not followed. */
async function listFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    if (!(await lstat(dir)).isDirectory()) throw new WebAppError(`${dir} is not a folder`);
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (error instanceof WebAppError) throw error;
    throw new WebAppError(
      `${dir} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): build the app with "npm run build"`,
    );
  }
  const files: string[] = [];
  for (const entry of entries) {
    if (!SERVABLE_NAME.test(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(path)));
    else if (entry.isFile()) files.push(path);
    if (files.length > MAX_FILES)
      throw new WebAppError(`${dir} holds more than ${MAX_FILES} files: not a built app`);
  }
  return files;
}
