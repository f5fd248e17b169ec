import { request as httpRequest } from 'node:http';
import type { JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KEY_SERVER_PATHS, startKeyServer, type KeyServer } from '../kit/key-server.js';
import { generateTestKey } from '../kit/tokens.js';

// The test kit's key server (test/kit/key-server.ts), over real HTTP on 127.0.0.1: each behaviour once.

let first: JWK;
let second: JWK;

beforeAll(async () => {
  first = (await generateTestKey('kit-key-1')).publicJwk;
  second = (await generateTestKey('kit-key-2')).publicJwk;
});

const servers: KeyServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function start(...args: Parameters<typeof startKeyServer>): Promise<KeyServer> {
  const server = await startKeyServer(...args);
  servers.push(server);
  return server;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function get(url: string): Promise<Answer> {
  const response = await fetch(url);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A GET whose settling the test can observe without awaiting it. */
function pending(url: string): { answer: Promise<Answer>; readonly settled: boolean } {
  let settled = false;
  const answer = get(url).finally(() => (settled = true));
  return {
    answer,
    get settled() {
      return settled;
    },
  };
}

/** A GET over a raw connection: how it ends when the server closes it without answering. */
function rawGet(url: string): Promise<string> {
  return new Promise((resolve) => {
    const request = httpRequest(url, (response) => resolve(`answered ${response.statusCode}`));
    request.on('error', (error: NodeJS.ErrnoException) => resolve(`${error.code}: ${error.message}`));
    request.end();
  });
}

describe('startKeyServer: the key set and the discovery metadata', () => {
  it('serves the published keys at url, and the keys published later', async () => {
    const server = await start([first]);
    expect(server.url).toBe(`${server.issuer}${KEY_SERVER_PATHS.jwks}`);
    expect(server.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const answer = await get(server.url);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(answer.text)).toEqual({ keys: [first] });

    server.publish([first, second]);
    expect(JSON.parse((await get(server.url)).text)).toEqual({ keys: [first, second] });
  });

  it('serves the same default metadata at both well-known paths, naming its issuer and jwks_uri; replaceable', async () => {
    const server = await start([first]);
    expect(server.metadataUrl).toBe(`${server.issuer}${KEY_SERVER_PATHS.openidConfiguration}`);
    const openid = await get(server.metadataUrl);
    const oauth = await get(`${server.issuer}${KEY_SERVER_PATHS.oauthAuthorizationServer}`);
    expect(openid.status).toBe(200);
    expect(openid.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(openid.text)).toMatchObject({ issuer: server.issuer, jwks_uri: server.url });
    expect(oauth.status).toBe(200);
    expect(oauth.text).toBe(openid.text);

    server.serveMetadata({ issuer: 'https://elsewhere.example/', jwks_uri: server.url });
    expect(JSON.parse((await get(server.metadataUrl)).text)).toEqual({
      issuer: 'https://elsewhere.example/',
      jwks_uri: server.url,
    });
    server.serveMetadata(undefined);
    expect((await get(server.metadataUrl)).text).toBe(openid.text);
    expect((await get(`${server.issuer}/elsewhere`)).status).toBe(404);
  });
});

describe('startKeyServer: behaviours', () => {
  it('answers a given HTTP status with an empty body, for both parts or only one', async () => {
    const server = await start([first]);
    server.behave('http-500');
    expect(await get(server.url)).toMatchObject({ status: 500, text: '' });
    expect(await get(server.metadataUrl)).toMatchObject({ status: 500, text: '' });

    server.behave('keys');
    server.behave('http-404', 'keys');
    expect(await get(server.url)).toMatchObject({ status: 404, text: '' });
    expect((await get(server.metadataUrl)).status).toBe(200);

    server.behave('keys');
    server.behave('http-503', 'metadata');
    expect((await get(server.url)).status).toBe(200);
    expect((await get(server.metadataUrl)).status).toBe(503);
  });

  it('garbage: 200 with a JSON content-type and a body that is not JSON', async () => {
    const server = await start([first]);
    server.behave('garbage');
    const answer = await get(server.url);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(() => JSON.parse(answer.text)).toThrow(SyntaxError);
  });

  it('huge: 10 MB holding the published keys, with a content-length on every other answer', async () => {
    const server = await start([first]);
    server.behave('huge');
    const answers = [await get(server.url), await get(server.url), await get(server.url)];
    expect(answers.map((answer) => answer.headers.get('content-length'))).toEqual([
      String(10 * 1024 * 1024),
      null,
      String(10 * 1024 * 1024),
    ]);
    expect(answers[1]!.headers.get('transfer-encoding')).toBe('chunked');
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toBe('application/json');
      expect(Buffer.byteLength(answer.text)).toBe(10 * 1024 * 1024);
      expect((JSON.parse(answer.text) as { keys: unknown }).keys).toEqual([first]);
    }
  });

  it('hang: reads the request and never answers, until close() ends the connection', async () => {
    const server = await startKeyServer([first]); // closed by the test itself
    server.behave('hang');
    const ended = rawGet(server.url);
    await server.arrivals(1);
    await server.close();
    expect(await ended).toMatch(/^ECONNRESET: socket hang up/);
    expect(server.requests).toBe(1);
  });

  it('held: every request waits for release(), then gets the keys published by then', async () => {
    const server = await start([first]);
    server.hold();
    const a = pending(server.url);
    const b = pending(server.metadataUrl);
    await server.arrivals(2);
    server.publish([second]);
    expect([a.settled, b.settled]).toEqual([false, false]);

    server.release();
    expect(JSON.parse((await a.answer).text)).toEqual({ keys: [second] });
    expect((await b.answer).status).toBe(200);
    expect(JSON.parse((await get(server.url)).text)).toEqual({ keys: [second] }); // no longer held
  });

  it('held from the start, then close(): the held connection is ended', async () => {
    const server = await startKeyServer([first], { hold: 'every' }); // closed by the test itself
    const ended = rawGet(server.url);
    await server.arrivals(1);
    await server.close();
    expect(await ended).toMatch(/^ECONNRESET: socket hang up/);
  });

  it('held-first: only the first request waits for release(); the later ones are answered at once', async () => {
    const server = await start([first], { hold: 'first' });
    const held = pending(server.url);
    await server.arrivals(1);
    expect(JSON.parse((await get(server.url)).text)).toEqual({ keys: [first] });
    expect(JSON.parse((await get(server.url)).text)).toEqual({ keys: [first] });
    expect(held.settled).toBe(false);

    server.publish([second]);
    server.release();
    expect(JSON.parse((await held.answer).text)).toEqual({ keys: [second] });
    expect(server.requests).toBe(3);
  });
});

describe('startKeyServer: counts', () => {
  it('counts requests in all and by label, records the paths, and when the keys were last served', async () => {
    const server = await start([first]);
    expect(server.lastKeysServedAt).toBe(Number.NEGATIVE_INFINITY);
    const arrived = server.arrivals(3);

    const before = Date.now();
    await get(server.url);
    const after = Date.now();
    expect(server.lastKeysServedAt).toBeGreaterThanOrEqual(before);
    expect(server.lastKeysServedAt).toBeLessThanOrEqual(after);
    const served = server.lastKeysServedAt;

    server.label('failing');
    server.behave('http-500');
    await get(server.url);
    await get(`${server.issuer}${KEY_SERVER_PATHS.oauthAuthorizationServer}`);
    await arrived;
    server.behave('keys');
    await get(server.metadataUrl);
    expect(server.lastKeysServedAt).toBe(served); // neither a failed answer nor the metadata serves the keys

    expect(server.requests).toBe(4);
    expect(server.requestsByLabel()).toEqual(
      new Map([
        ['start', 1],
        ['failing', 3],
      ]),
    );
    expect(server.paths).toEqual([
      KEY_SERVER_PATHS.jwks,
      KEY_SERVER_PATHS.jwks,
      KEY_SERVER_PATHS.oauthAuthorizationServer,
      KEY_SERVER_PATHS.openidConfiguration,
    ]);
    await server.arrivals(4); // already there: resolves at once
  });
});
