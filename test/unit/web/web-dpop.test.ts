import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDpopKey, type DpopKeyPair } from '../../../src/client/dpop-key.js';
import { bankApi } from '../../../web/src/bank-api.js';
import type { Operation } from '../../../web/src/bank-session.js';
import { asksForNonce, DpopFetch } from '../../../web/src/dpop-fetch.js';
import {
  generateDpopKeyPair,
  isUsableKeyPair,
  loadDpopKey,
  type KeyPairStorage,
} from '../../../web/src/dpop-key-store.js';
import type { TokenGrant } from '../../../web/src/token-response.js';
import { describeBinding } from '../../../web/src/token-summary.js';

/*
 * The web app's DPoP pieces (RFC 9449) without a browser: the key it keeps, the proofs it sends with the
 * token request and every API call, server nonces (section 8 and 9), and how a token's binding is shown.
 * Node has the browser's WebCrypto; IndexedDB itself is exercised in Chromium (test/browser).
 */

interface Sent {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

/** A fetch that records what it is given and answers from `answers` in turn (the last one repeats). */
function recordingFetch(answers: (() => Response)[]): { send: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const send = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const body = init?.body;
    sent.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers: { ...(init?.headers as Record<string, string>) },
      body: body === undefined || body === null ? undefined : String(body),
    });
    return answers[Math.min(sent.length - 1, answers.length - 1)]!();
  };
  return { send: send as typeof fetch, sent };
}

const ok = () => Response.json({ account: 'alice', balance: 1000 });

/** The proof's verified header and claims: signed by the key in its own `jwk` header, typ dpop+jwt. */
async function readProof(proof: string | undefined) {
  if (proof === undefined) throw new Error('no DPoP header was sent');
  const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
  return { payload, header: protectedHeader };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

const DPOP_GRANT: TokenGrant = {
  accessToken: 'eyJ.dpop.token',
  tokenType: 'DPoP',
  scopes: ['view:balance'],
  expiresAtMs: undefined,
};
const BALANCE: Operation = { method: 'GET', path: '/balance?fresh=1', purpose: 'see your balance' };
const TRANSFER: Operation = {
  method: 'POST',
  path: '/transfer',
  body: { to: 'bob', amount: 25 },
  purpose: 'transfer 25 to bob',
};
const BASE = 'http://127.0.0.1:8000/app/';

describe('calling the bank with a DPoP-bound token', () => {
  it('sends Authorization: DPoP and a fresh proof over the method, the URL without query, and the token', async () => {
    const key = await createDpopKey();
    const { send, sent } = recordingFetch([ok]);
    const call = bankApi(new DpopFetch(key, send), BASE, send);

    const answer = await call(BALANCE, DPOP_GRANT);
    expect(answer).toEqual({ status: 200, challenge: null, body: { account: 'alice', balance: 1000 } });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.url).toBe('http://127.0.0.1:8000/balance?fresh=1');
    expect(sent[0]!.headers['authorization']).toBe('DPoP eyJ.dpop.token');
    const { payload, header } = await readProof(sent[0]!.headers['dpop']);
    expect(header.alg).toBe('ES256');
    expect(header.jwk).not.toHaveProperty('d');
    expect(await calculateJwkThumbprint(header.jwk as JWK)).toBe(key.thumbprint);
    expect(payload).toMatchObject({
      htm: 'GET',
      htu: 'http://127.0.0.1:8000/balance',
      ath: sha256('eyJ.dpop.token'),
    });
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload.iat).toEqual(expect.any(Number));
    expect(payload).not.toHaveProperty('nonce');
  });

  it('makes a new proof for every call (a new jti), and sends the JSON body of a transfer', async () => {
    const { send, sent } = recordingFetch([ok]);
    const call = bankApi(new DpopFetch(await createDpopKey(), send), BASE, send);
    await call(TRANSFER, DPOP_GRANT);
    await call(TRANSFER, DPOP_GRANT);
    const [first, second] = await Promise.all(sent.map((request) => readProof(request.headers['dpop'])));
    expect(first!.payload.jti).not.toBe(second!.payload.jti);
    expect(first!.payload).toMatchObject({ htm: 'POST', htu: 'http://127.0.0.1:8000/transfer' });
    expect(sent[0]!.body).toBe('{"to":"bob","amount":25}');
    expect(sent[0]!.headers['content-type']).toBe('application/json');
  });

  it('sends a Bearer token as Bearer, without a proof, and no token at all without either', async () => {
    const { send, sent } = recordingFetch([ok]);
    const call = bankApi(new DpopFetch(await createDpopKey(), send), BASE, send);
    await call(BALANCE, { ...DPOP_GRANT, tokenType: 'Bearer' });
    await call(BALANCE, undefined);
    expect(sent.map((request) => [request.headers['authorization'], request.headers['dpop']])).toEqual([
      ['Bearer eyJ.dpop.token', undefined],
      [undefined, undefined],
    ]);
  });

  it('401 use_dpop_nonce: retries once with the nonce, and uses the latest nonce from then on (RFC 9449 section 9)', async () => {
    const refused = () =>
      new Response('{"error":"use_dpop_nonce"}', {
        status: 401,
        headers: {
          'www-authenticate': 'Bearer realm="bank-api", DPoP algs="ES256", error="use_dpop_nonce"',
          'dpop-nonce': 'n-1',
        },
      });
    const later = () => new Response('{"balance":1}', { headers: { 'dpop-nonce': 'n-2' } });
    const { send, sent } = recordingFetch([refused, ok, later, ok]);
    const dpop = new DpopFetch(await createDpopKey(), send);
    const call = bankApi(dpop, BASE, send);

    expect((await call(BALANCE, DPOP_GRANT)).status).toBe(200);
    expect(sent).toHaveLength(2);
    expect((await readProof(sent[1]!.headers['dpop'])).payload['nonce']).toBe('n-1');

    await call(BALANCE, DPOP_GRANT); // answered with a new nonce (section 8.2)
    expect(dpop.nonceFor('http://127.0.0.1:8000')).toBe('n-2');
    await call(BALANCE, DPOP_GRANT);
    expect((await readProof(sent[3]!.headers['dpop'])).payload['nonce']).toBe('n-2');
  });

  it('does not retry a second time when the fresh nonce is refused too', async () => {
    let nonce = 0;
    const refused = () =>
      new Response(null, {
        status: 401,
        headers: { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': `n-${++nonce}` },
      });
    const { send, sent } = recordingFetch([refused]);
    const answer = await bankApi(new DpopFetch(await createDpopKey(), send), BASE, send)(BALANCE, DPOP_GRANT);
    expect(answer.status).toBe(401);
    expect(answer.challenge).toBe('DPoP error="use_dpop_nonce"');
    expect(sent).toHaveLength(2);
  });

  it('does not retry other refusals, nor a use_dpop_nonce without a nonce to use', async () => {
    const invalidProof = () =>
      new Response(null, {
        status: 401,
        headers: { 'www-authenticate': 'DPoP error="invalid_dpop_proof"', 'dpop-nonce': 'n-1' },
      });
    const noNonce = () =>
      new Response(null, { status: 401, headers: { 'www-authenticate': 'DPoP error="use_dpop_nonce"' } });
    for (const answer of [invalidProof, noNonce]) {
      const { send, sent } = recordingFetch([answer]);
      await bankApi(new DpopFetch(await createDpopKey(), send), BASE, send)(BALANCE, DPOP_GRANT);
      expect(sent).toHaveLength(1);
    }
  });

  it('keeps nonces per server, and ignores a DPoP-Nonce that is no NQCHAR string', async () => {
    const { send } = recordingFetch([
      () => new Response('{}', { headers: { 'dpop-nonce': 'api-nonce' } }),
      () => new Response('{}', { headers: { 'dpop-nonce': 'has "quotes"' } }),
    ]);
    const dpop = new DpopFetch(await createDpopKey(), send);
    const request = (url: string) => ({ method: 'GET', url: new URL(url), headers: {}, init: () => ({}) });
    await dpop.fetch(request('http://127.0.0.1:8000/balance'));
    await dpop.fetch(request('http://127.0.0.1:9000/oauth/token'));
    expect(dpop.nonceFor('http://127.0.0.1:8000')).toBe('api-nonce');
    expect(dpop.nonceFor('http://127.0.0.1:9000')).toBeUndefined();
  });
});

describe('the token request carries a proof', () => {
  it('400 use_dpop_nonce from the token endpoint: retried once with the nonce, the body sent again (RFC 9449 section 8)', async () => {
    const refused = () =>
      Response.json({ error: 'use_dpop_nonce' }, { status: 400, headers: { 'dpop-nonce': 'idp-1' } });
    const granted = () => Response.json({ access_token: 't', token_type: 'DPoP' });
    const { send, sent } = recordingFetch([refused, granted]);
    const dpop = new DpopFetch(await createDpopKey(), send);
    const response = await dpop.fetch({
      method: 'POST',
      url: new URL('http://127.0.0.1:9000/oauth/token?x=1'),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      init: () => ({ body: new URLSearchParams({ grant_type: 'authorization_code', code: 'c' }) }),
    });
    expect(response.status).toBe(200);
    expect(sent.map((request) => request.body)).toEqual([
      'grant_type=authorization_code&code=c',
      'grant_type=authorization_code&code=c',
    ]);
    const first = await readProof(sent[0]!.headers['dpop']);
    expect(first.payload).toMatchObject({ htm: 'POST', htu: 'http://127.0.0.1:9000/oauth/token' });
    expect(first.payload).not.toHaveProperty('ath');
    expect(first.payload).not.toHaveProperty('nonce');
    expect((await readProof(sent[1]!.headers['dpop'])).payload['nonce']).toBe('idp-1');
  });

  it('reads use_dpop_nonce from a 400 body without using it up, and nothing else', async () => {
    const refused = Response.json({ error: 'use_dpop_nonce' }, { status: 400 });
    expect(await asksForNonce(refused)).toBe(true);
    expect(await refused.json()).toEqual({ error: 'use_dpop_nonce' });
    expect(await asksForNonce(Response.json({ error: 'invalid_grant' }, { status: 400 }))).toBe(false);
    expect(await asksForNonce(new Response('not json', { status: 400 }))).toBe(false);
    expect(await asksForNonce(new Response(null, { status: 403 }))).toBe(false);
    expect(
      await asksForNonce(
        new Response(null, { status: 401, headers: { 'www-authenticate': 'Bearer error="use_dpop_nonce"' } }),
      ),
    ).toBe(false);
  });
});

describe("the browser's DPoP key", () => {
  /** Storage in memory, as IndexedDB behaves: keeps the stored pair when usable, else stores the fresh one. */
  function memoryStorage(initial?: unknown): KeyPairStorage & { stored: unknown } {
    return {
      stored: initial,
      async keepOrReplace(fresh, usable) {
        if (usable(this.stored)) return this.stored;
        this.stored = fresh;
        return fresh;
      },
    };
  }

  it('makes a non-extractable P-256 key, stores it, and signs with it', async () => {
    const storage = memoryStorage();
    const { key, persisted } = await loadDpopKey(storage);
    expect(persisted).toBe(true);
    const pair = storage.stored as DpopKeyPair;
    expect(pair.privateKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('jwk', pair.privateKey)).rejects.toThrow();
    const proof = await key.proof({ method: 'GET', url: 'http://127.0.0.1:8000/balance' });
    expect(await calculateJwkThumbprint(decodeProtectedHeader(proof).jwk as JWK)).toBe(key.thumbprint);
  });

  it('uses the key stored by an earlier page load, so tokens stay bound to one key', async () => {
    const storage = memoryStorage();
    const first = await loadDpopKey(storage);
    const second = await loadDpopKey(storage);
    expect(second.key.thumbprint).toBe(first.key.thumbprint);
  });

  it('replaces a stored value that is not a usable pair', async () => {
    const extractable = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    for (const stale of ['not a key', { privateKey: 1, publicKey: 2 }, extractable]) {
      const storage = memoryStorage(stale);
      await loadDpopKey(storage);
      expect(storage.stored).not.toBe(stale);
      expect(isUsableKeyPair(storage.stored)).toBe(true);
    }
  });

  it('refuses other curves and algorithms as stored keys', async () => {
    const p384 = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign']);
    const hmac = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    expect(isUsableKeyPair(p384)).toBe(false);
    expect(isUsableKeyPair({ privateKey: hmac, publicKey: hmac })).toBe(false);
    expect(isUsableKeyPair(await generateDpopKeyPair())).toBe(true);
  });

  it('falls back to a key for this page when storage fails', async () => {
    const broken: KeyPairStorage = { keepOrReplace: () => Promise.reject(new Error('IndexedDB disabled')) };
    const { key, persisted } = await loadDpopKey(broken);
    expect(persisted).toBe(false);
    expect(key.thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await loadDpopKey(undefined)).persisted).toBe(false);
  });
});

describe('how a token binding is shown', () => {
  it('a DPoP token bound to this key, to another one, and a bearer token, by the start of the thumbprint only', async () => {
    const key = await createDpopKey();
    const mine = describeBinding('DPoP', { jkt: key.thumbprint }, key.thumbprint);
    expect(mine).toBe(`bound to this browser's key (DPoP, thumbprint ${key.thumbprint.slice(0, 8)}…)`);
    expect(mine).not.toContain(key.thumbprint);
    expect(describeBinding('DPoP', { jkt: 'AAAAAAAAAAothers' }, key.thumbprint)).toBe(
      "bound to another key than this browser's (DPoP, thumbprint AAAAAAAA…)",
    );
    expect(describeBinding('Bearer', { jkt: undefined }, key.thumbprint)).toBe(
      'a bearer token: it works for whoever holds it',
    );
  });
});
