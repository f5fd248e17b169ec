import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lookUp } from '../kit/look-up-key.js';
import { IssuerKeys, type KeySetFetchEvent } from '../../src/authn/issuer-keys.js';
import { fetchKeySetOverHttp, readKeySet, type FetchKeySet } from '../../src/authn/read-key-set.js';
import { compilePolicy } from '../../src/policy/compile-policy.js';
import type { IssuerPolicy } from '../../src/policy/compiled-policy.js';
import { demoPolicyText } from '../kit/inline-policy.js';
import { createManualClock, type ManualClock } from '../kit/manual-clock.js';
import { generateTestKey, type TestKey } from '../kit/tokens.js';
import { startKeyServer } from '../kit/key-server.js';
import { waitUntil } from '../kit/wait-until.js';

// Key sets fetched from real HTTP servers on 127.0.0.1; the injected-fetch cases are in test/unit/issuer-keys.test.ts.
const TTL_MS = 60_000; // jwks_cache_ttl: 60
const COOLDOWN_MS = 10_000; // jwks_refresh_cooldown: 10

function issuerWith(settings: { jwksUri: string }): IssuerPolicy {
  const text = demoPolicyText([], {
    keys: { jwksUri: settings.jwksUri },
    issuerSettings: { jwks_cache_ttl: TTL_MS / 1000, jwks_refresh_cooldown: COOLDOWN_MS / 1000 },
  });
  const policy = compilePolicy(text, 'policy.yaml');
  return policy.issuers.get('https://idp.example/')!;
}

let first: TestKey;

beforeAll(async () => {
  first = await generateTestKey('key-1');
});

let clock: ManualClock;
let events: KeySetFetchEvent[];

beforeEach(() => {
  clock = createManualClock();
  events = [];
});

function issuerKeys(issuer: IssuerPolicy, fetchKeySet: FetchKeySet): IssuerKeys {
  return new IssuerKeys({ issuer, fetchKeySet, now: clock.now, onFetch: (event) => events.push(event) });
}

describe('IssuerKeys over HTTP on 127.0.0.1', () => {
  it('fetches from a JWKS server, caches, and keeps the keys when a background refresh fails', async () => {
    const server = await startKeyServer([first.publicJwk]);
    try {
      const keys = issuerKeys(issuerWith({ jwksUri: server.url }), fetchKeySetOverHttp);

      expect(await lookUp(keys, 'key-1')).toBe('found');
      expect(await lookUp(keys, 'key-1')).toBe('found');
      expect(server.requests).toBe(1);

      server.behave('http-500');
      clock.advance(TTL_MS); // past the refresh time (75 to 90 % of the TTL)
      expect(await lookUp(keys, 'key-1')).toBe('found'); // at once, from the held keys
      await waitUntil(
        () => events.length,
        (count) => count === 2,
        { timeoutMs: 10_000, what: 'the background refresh to end' },
      );
      expect(server.requests).toBe(2);
      expect(events.at(-1)).toMatchObject({
        outcome: 'error',
        trigger: 'refresh',
        error: `${server.url} answered HTTP 500`,
      });
      expect(await lookUp(keys, 'key-1')).toBe('found');
      expect(keys.usable).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('readKeySet', () => {
  it('does not follow a redirect from a real server on 127.0.0.1', async () => {
    let requests = 0;
    const server = createServer((_request, response) => {
      requests += 1;
      response.writeHead(302, { location: '/elsewhere.json' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const uri = new URL(`http://127.0.0.1:${port}/jwks.json`);

      await expect(readKeySet({ kind: 'uri', uri }, fetchKeySetOverHttp)).rejects.toThrow();
      expect(requests).toBe(1);
    } finally {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  });
});
