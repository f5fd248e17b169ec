import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, EmbeddedJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { accessTokenHash, createDpopKey, type DpopKey } from '../../src/client/dpop-key.js';
import { ApiClient } from '../../src/demo/walkthrough/api-client.js';

/*
 * The demo client's API calls against a small local server that records what it receives: a DPoP-bound
 * token goes as `Authorization: DPoP` with a fresh proof (RFC 9449 section 7.1) whose signature, htm, htu
 * and ath a verifier accepts; a Bearer token goes without one; a `use_dpop_nonce` challenge is answered by
 * one retry carrying the nonce (section 8), and the latest nonce is kept for later calls.
 */

interface Received {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  readonly dpop: string | undefined;
}

describe('demo client: API calls with DPoP', () => {
  let server: Server;
  let api: string;
  let key: DpopKey;
  const received: Received[] = [];
  /** What the server answers next; a queue, then 200. */
  let script: ((request: IncomingMessage) => {
    status: number;
    headers: Record<string, string | string[]>;
  })[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        authorization: request.headers.authorization,
        dpop: request.headers['dpop'] as string | undefined,
      });
      const next = script.shift();
      const { status, headers } = next === undefined ? { status: 200, headers: {} } : next(request);
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify({ balance: 1000 }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    key = await createDpopKey();
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    received.length = 0;
    script = [];
  });

  it('sends a DPoP-bound token under the DPoP scheme with a proof a verifier accepts', async () => {
    const client = new ApiClient(api, key);
    const answer = await client.call(
      'POST',
      '/transfer?x=1',
      { accessToken: 'the-token', tokenType: 'DPoP' },
      {},
    );
    expect(answer.status).toBe(200);
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request!.authorization).toBe('DPoP the-token');
    const { payload, protectedHeader } = await jwtVerify(request!.dpop!, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader.jwk).toEqual(key.publicJwk);
    expect(payload).toMatchObject({
      htm: 'POST',
      htu: `${api}/transfer`, // no query (RFC 9449 section 4.2)
      ath: await accessTokenHash('the-token'),
    });
    expect(payload['nonce']).toBeUndefined();
    expect(typeof payload.jti).toBe('string');
  });

  it('makes a fresh proof for every call', async () => {
    const client = new ApiClient(api, key);
    const token = { accessToken: 't', tokenType: 'DPoP' };
    await client.call('GET', '/balance', token);
    await client.call('GET', '/balance', token);
    const [first, second] = received.map((request) => decodeJwt(request.dpop!).jti);
    expect(first).not.toBe(second);
  });

  it('sends a Bearer token as Bearer, with no proof', async () => {
    await new ApiClient(api, key).call('GET', '/balance', { accessToken: 't', tokenType: 'Bearer' });
    expect(received[0]).toMatchObject({ authorization: 'Bearer t', dpop: undefined });
  });

  it('retries once with the nonce of a use_dpop_nonce challenge, and keeps the latest nonce', async () => {
    const client = new ApiClient(api, key);
    const token = { accessToken: 't', tokenType: 'DPoP' };
    const askForNonce = (nonce: string) => () => ({
      status: 401,
      headers: {
        'www-authenticate': 'DPoP algs="ES256", error="use_dpop_nonce"',
        'dpop-nonce': nonce,
      },
    });
    script = [askForNonce('n1')];
    expect((await client.call('GET', '/balance', token)).status).toBe(200);
    expect(received.map((request) => decodeJwt(request.dpop!)['nonce'])).toEqual([undefined, 'n1']);

    // A later answer rotates the nonce: the next proof carries it without being asked again.
    script = [() => ({ status: 200, headers: { 'dpop-nonce': 'n2' } })];
    await client.call('GET', '/balance', token);
    await client.call('GET', '/balance', token);
    expect(decodeJwt(received.at(-1)!.dpop!)['nonce']).toBe('n2');
  });

  it('does not retry a second time when the retry is asked for a nonce again', async () => {
    const client = new ApiClient(api, key);
    const again = () => ({
      status: 401,
      headers: { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n3' },
    });
    script = [again, again, again];
    const answer = await client.call('GET', '/balance', { accessToken: 't', tokenType: 'DPoP' });
    expect(answer.status).toBe(401);
    expect(received).toHaveLength(2);
  });

  it('reads every WWW-Authenticate line of an answer, joined as one list', async () => {
    // node:http sends an array as separate header lines (one challenge per scheme, RFC 9449 section 7.1).
    script = [
      () => ({
        status: 401,
        headers: { 'www-authenticate': ['DPoP algs="ES256"', 'Bearer realm="bank-api"'] },
      }),
    ];
    const client = new ApiClient(api, key);
    const answer = await client.call('GET', '/balance', { accessToken: 't', tokenType: 'Bearer' });
    expect(answer.challenge).toBe('DPoP algs="ES256", Bearer realm="bank-api"');
  });
});
