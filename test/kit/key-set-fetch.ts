import type { JWK } from 'jose';
import type { BoundedWait } from '../../src/authn/issuer-keys.js';
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

/**
 * How many turns of the event loop {@link settle} lets pass: a fetch's result lands a few turns after the
 * fetch resolves (the body is read, then checkKeySet imports each key), far fewer than this.
 */
const SETTLE_TURNS = 20;

/**
 * Lets work already under way run to its end before a test looks at the result, without a timer: a
 * background refresh (or a fetch a request gave up waiting for) is done, and its keys in use, after this.
 */
export async function settle(): Promise<void> {
  for (let turn = 0; turn < SETTLE_TURNS; turn += 1) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** An `IssuerKeys` `waitAtMost` that runs no timer, with every wait it was asked for. */
export interface RecordedWait {
  /** Pass as `waitAtMost`. */
  readonly waitAtMost: BoundedWait;
  /** The `ms` of each wait (the issuer's `jwks_fetch_wait`), in order. */
  readonly waits: readonly number[];
}

/**
 * A `waitAtMost` for tests that never sleep. `until_done`: waits for the fetch however long it takes (a
 * scripted fetch ends at once unless held: do not combine with a fetch that is never released);
 * `give_up`: returns at once, as if `jwks_fetch_wait` had passed before the fetch ended.
 */
export function recordWaits(mode: 'until_done' | 'give_up'): RecordedWait {
  const waits: number[] = [];
  return {
    waits,
    waitAtMost: async (promise, ms) => {
      waits.push(ms);
      if (mode === 'give_up') return;
      await promise.then(
        () => undefined,
        () => undefined,
      );
    },
  };
}
