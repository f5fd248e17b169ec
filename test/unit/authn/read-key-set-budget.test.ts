import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KEY_SET_LIMITS, readKeySet, type FetchKeySet } from '../../../src/authn/read-key-set.js';
import type { KeySource } from '../../../src/policy/compiled-policy.js';
import { settle } from '../../kit/key-set-fetch.js';

// One time budget (KEY_SET_LIMITS.timeoutMs, 5 s) for a whole read: with discovery, the metadata and the key
// set together; and it ends the read even when a fetch ignores its abort signal.
const ISSUER = 'https://idp.example/';
const METADATA_URL = 'https://idp.example/.well-known/openid-configuration';
const JWKS_URI = 'https://keys.idp.example/oauth2/v1/keys';
const BUDGET_MS = KEY_SET_LIMITS.timeoutMs;
const TIMED_OUT = `the key set was not read within ${BUDGET_MS} ms`;

const discovery: KeySource = { kind: 'discovery', metadataUrl: new URL(METADATA_URL), issuer: ISSUER };
const jwksUri: KeySource = { kind: 'uri', uri: new URL(JWKS_URI) };

const json = (body: unknown) =>
  new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
const metadata = () => json({ issuer: ISSUER, jwks_uri: JWKS_URI });

/** A fetch that honours its signal: it answers only by failing once the signal aborts. */
const untilAborted = (signal: AbortSignal) =>
  new Promise<Response>((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });

/** A fetch that ignores its signal and never answers. */
const never = () => new Promise<Response>(() => {});

/** How the read ended, without leaving a rejection unhandled while the test moves time on. */
function outcomeOf(read: Promise<unknown>): Promise<string> {
  return read.then(
    () => 'read',
    (error: unknown) => (error as Error).message,
  );
}

/** 'pending' while `promise` has not settled. */
async function stateOf(promise: Promise<string>): Promise<string> {
  return Promise.race([promise, Promise.resolve('pending')]);
}

let timeoutDelays: number[];

beforeEach(() => {
  // vi.useFakeTimers does not drive AbortSignal.timeout: Node schedules it on internal timers, not the global
  // setTimeout (checked: such a signal is not aborted after advancing the fake clock past its delay). So it is
  // replaced here by an equivalent on the global setTimeout, which the fake timers do drive.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  timeoutDelays = [];
  vi.spyOn(AbortSignal, 'timeout').mockImplementation((ms) => {
    timeoutDelays.push(ms);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')), ms);
    return controller.signal;
  });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('readKeySet: one time budget for the whole read', () => {
  it('passes one signal to both discovery requests, and asks for one budget of 5 s', async () => {
    const signals: AbortSignal[] = [];
    const fetch: FetchKeySet = async (url, { signal }) => {
      signals.push(signal);
      return url.href === METADATA_URL ? metadata() : json({ keys: [] });
    };

    expect(await readKeySet(discovery, fetch)).toEqual({ keys: [] });
    expect(signals).toHaveLength(2);
    expect(signals[1]).toBe(signals[0]);
    expect(timeoutDelays).toEqual([BUDGET_MS]);
  });

  it('gives the key set request what the metadata request left: 3 s spent, the read ends 2 s later', async () => {
    const signals: AbortSignal[] = [];
    const fetch: FetchKeySet = async (url, { signal }) => {
      signals.push(signal);
      if (url.href !== METADATA_URL) return untilAborted(signal);
      await new Promise((resolve) => setTimeout(resolve, 3000)); // a slow metadata answer
      return metadata();
    };

    const outcome = outcomeOf(readKeySet(discovery, fetch));
    await vi.advanceTimersByTimeAsync(3000);
    await settle(); // the metadata is read, and the key set requested
    expect(signals).toHaveLength(2);
    expect(signals[1]).toBe(signals[0]);

    await vi.advanceTimersByTimeAsync(BUDGET_MS - 3000 - 1);
    expect(signals[1]!.aborted).toBe(false);
    expect(await stateOf(outcome)).toBe('pending');

    await vi.advanceTimersByTimeAsync(1);
    expect(signals[1]!.aborted).toBe(true);
    expect(await outcome).toBe(TIMED_OUT);
  });

  it.each<[string, KeySource, FetchKeySet]>([
    ['a jwks_uri fetch', jwksUri, never],
    ['the discovery metadata fetch', discovery, never],
    [
      'the discovered key set fetch',
      discovery,
      async (url) => (url.href === METADATA_URL ? metadata() : never()),
    ],
  ])(
    'ends with an error after the budget when %s ignores the signal and never answers',
    async (_case, source, fetch) => {
      const outcome = outcomeOf(readKeySet(source, fetch));
      await settle(); // as far as the read gets: with discovery, the metadata is read

      await vi.advanceTimersByTimeAsync(BUDGET_MS - 1);
      expect(await stateOf(outcome)).toBe('pending');

      await vi.advanceTimersByTimeAsync(1);
      expect(await outcome).toBe(TIMED_OUT);
    },
  );
});
