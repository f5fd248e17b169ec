import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBank, type RunningBank } from '../../src/demo/bank/bank-server.js';
import { loadWebApp, WEB_APP_CLIENT_ID, WebAppError } from '../../src/demo/bank/web-app.js';
import { DEFAULT_REDIRECT_URIS, SPA_CLIENT_ID } from '../../src/demo/idp/protocol-values.js';
import { rawRequest, type RawAnswer } from '../kit/raw-http.js';

/** `method path` on 127.0.0.1:port, the path sent exactly as written. */
function raw(port: number, method: string, path: string): Promise<RawAnswer> {
  return rawRequest(`http://127.0.0.1:${port}`, path, { method });
}

/*
 * The bank serving the web app's files over real HTTP: exact lookups only (no path ever reaches the
 * file system), the generated config.json, the security headers, and the limits on what it will load.
 * Raw requests go through node:http so paths are sent exactly as written, with no client-side cleaning.
 */

const SETTINGS = {
  issuer: 'http://127.0.0.1:9000',
  clientId: 'bank-spa',
  audience: 'https://my-banking-api',
  scope: 'openid view:balance',
};

describe('the bank serves the web app', () => {
  let dir: string;
  let outside: string;
  let bank: RunningBank;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'web-app-'));
    outside = await mkdtemp(join(tmpdir(), 'web-app-outside-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>Demo Bank</title>');
    await writeFile(join(dir, 'callback.html'), '<!doctype html><title>callback</title>');
    await writeFile(join(dir, 'assets', 'index-abc123.js'), 'console.log(1);');
    await writeFile(join(dir, 'assets', 'index-abc123.css'), 'body{}');
    await writeFile(join(dir, '.env'), 'SECRET=1');
    await writeFile(join(outside, 'secret.txt'), 'not for the web');
    await symlink(join(outside, 'secret.txt'), join(dir, 'linked.txt'));
    const app = await loadWebApp(dir, SETTINGS);
    bank = await startBank({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), app });
  });

  afterAll(async () => {
    await bank?.close();
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('/app/ is index.html, with a CSP that allows the identity provider for fetch and nothing else', async () => {
    const answer = await raw(bank.port, 'GET', '/app/');
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('<title>Demo Bank</title>');
    expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(answer.headers['cache-control']).toBe('no-cache');
    expect(answer.headers['content-security-policy']).toBe(
      "default-src 'self'; connect-src 'self' http://127.0.0.1:9000; img-src 'self' data:; object-src 'none'; " +
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    expect(answer.headers['x-frame-options']).toBe('DENY');
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
    expect(answer.headers['referrer-policy']).toBe('no-referrer');
  });

  it('/app redirects to /app/ so relative URLs resolve inside the app', async () => {
    const answer = await raw(bank.port, 'GET', '/app');
    expect(answer.status).toBe(308);
    expect(answer.headers['location']).toBe('/app/');
  });

  it('hashed assets are cacheable for a year, with their content types; the query string is ignored', async () => {
    const js = await raw(bank.port, 'GET', '/app/assets/index-abc123.js?v=1');
    expect(js.status).toBe(200);
    expect(js.body).toBe('console.log(1);');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await raw(bank.port, 'GET', '/app/assets/index-abc123.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('config.json is generated from the settings', async () => {
    const answer = await raw(bank.port, 'GET', '/app/config.json');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(JSON.parse(answer.body)).toEqual({
      issuer: 'http://127.0.0.1:9000',
      client_id: 'bank-spa',
      audience: 'https://my-banking-api',
      scope: 'openid view:balance',
    });
  });

  it('HEAD sends the headers and no body', async () => {
    const answer = await raw(bank.port, 'HEAD', '/app/callback.html');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-length']).toBe(String('<!doctype html><title>callback</title>'.length));
    expect(answer.body).toBe('');
  });

  it.each(['POST', 'PUT', 'DELETE'])('%s is refused with 405 and Allow', async (method) => {
    const answer = await raw(bank.port, method, '/app/');
    expect(answer.status).toBe(405);
    expect(answer.headers['allow']).toBe('GET, HEAD');
  });

  it.each([
    '/app/../policy.yaml',
    '/app/%2e%2e/package.json',
    '/app/assets/../index.html',
    '/app//index.html',
    '/app/.env',
    '/app/linked.txt',
    '/app/index.html/',
    '/app/ASSETS/index-abc123.js',
    '/app/missing.js',
  ])('%s is not found: only exact names of regular files inside the folder are served', async (path) => {
    const answer = await raw(bank.port, 'GET', path);
    expect(answer.status).toBe(404);
    expect(answer.body).not.toContain('not for the web');
    expect(answer.body).not.toContain('SECRET');
  });

  it('the API routes are unchanged', async () => {
    expect((await raw(bank.port, 'GET', '/healthz')).status).toBe(200);
    expect((await raw(bank.port, 'GET', '/balance')).status).toBe(401);
  });
});

describe('loadWebApp refuses what is not a built app', () => {
  it('a missing folder', async () => {
    await expect(loadWebApp(join(tmpdir(), 'no-such-web-app-folder'), SETTINGS)).rejects.toThrow(WebAppError);
  });

  it('a folder without index.html', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'web-app-empty-'));
    try {
      await writeFile(join(dir, 'other.html'), 'x');
      await expect(loadWebApp(dir, SETTINGS)).rejects.toThrow(/no index\.html/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a folder with far more files than an app has', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'web-app-big-'));
    try {
      await writeFile(join(dir, 'index.html'), 'x');
      await Promise.all(Array.from({ length: 300 }, (_, i) => writeFile(join(dir, `f${i}.js`), 'x')));
      await expect(loadWebApp(dir, SETTINGS)).rejects.toThrow(/more than 256 files/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a file, not a folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'web-app-file-'));
    try {
      await writeFile(join(dir, 'index.html'), 'x');
      await expect(loadWebApp(join(dir, 'index.html'), SETTINGS)).rejects.toThrow(/is not a folder/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the web app and the dev IdP agree', () => {
  it('on the client id, and on the callback the app computes under Envoy (envoy.yaml listens on 8000)', () => {
    expect(WEB_APP_CLIENT_ID).toBe(SPA_CLIENT_ID);
    // web/src/main.ts: new URL('callback.html', document.baseURI) on http://127.0.0.1:8000/app/
    expect(DEFAULT_REDIRECT_URIS).toContain(new URL('callback.html', 'http://127.0.0.1:8000/app/').href);
  });
});

describe('the bank without a web app', () => {
  it('answers 404 under /app/ and keeps serving the API', async () => {
    const bank = await startBank({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }) });
    try {
      expect((await raw(bank.port, 'GET', '/app/')).status).toBe(404);
      expect((await raw(bank.port, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await bank.close();
    }
  });
});
