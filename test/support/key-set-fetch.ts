import type { JWK } from 'jose';
import type { FetchKeySet } from '../../src/authn/read-key-set.js';

/** A scripted key set endpoint for `IssuerKeys` / `verifyAccessToken`: no network, every call recorded. */
export interface FakeKeySetFetch {
  /** Pass as `fetchKeySet`. */
  readonly fetch: FetchKeySet;
  /** How many times `fetch` was called. */
  readonly calls: number;
  /** Every URL requested, in order. */
  readonly urls: readonly string[];
  /** Keys served from now on. */
  publish(keys: readonly JWK[]): void;
  /** Fail every following call: an HTTP status, or an Error to reject with (undefined: serve normally). */
  failWith(failure: number | Error | undefined): void;
  /**
   * Holds the next call until `release()` is called; the promise returned resolves once that call has
   * started, so a test can check what happens while a fetch is under way.
   */
  holdNext(): { started: Promise<void>; release: () => void };
}

export function createKeySetFetch(initial: readonly JWK[]): FakeKeySetFetch {
  let keys = [...initial];
  let failure: number | Error | undefined;
  let calls = 0;
  const urls: string[] = [];
  let hold: { markStarted: () => void; released: Promise<void> } | undefined;

  const fetch: FetchKeySet = async (url) => {
    calls += 1;
    urls.push(url.href);
    const held = hold;
    hold = undefined;
    if (held !== undefined) {
      held.markStarted();
      await held.released;
    }
    if (failure instanceof Error) throw failure;
    if (failure !== undefined) return new Response('{"error":"down"}', { status: failure });
    return new Response(JSON.stringify({ keys }), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  };

  return {
    fetch,
    get calls() {
      return calls;
    },
    get urls() {
      return urls;
    },
    publish: (next) => {
      keys = [...next];
    },
    failWith: (next) => {
      failure = next;
    },
    holdNext: () => {
      let markStarted = () => {};
      let release = () => {};
      const started = new Promise<void>((resolve) => (markStarted = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      hold = { markStarted, released };
      return { started, release };
    },
  };
}
