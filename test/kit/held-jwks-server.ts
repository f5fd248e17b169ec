import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/**
 * A JWKS endpoint on 127.0.0.1 whose answers can be held back: while held, every request is counted on
 * arrival but answered only on `release()`. Tests use it to keep a Check waiting for its issuer's keys for
 * exactly as long as they need (no sleeping and hoping), then let it finish.
 */
export interface HeldJwksServer {
  readonly url: string;
  /** Keys published from now on (also to requests being held). */
  publish(keys: readonly JWK[]): void;
  /** Answer every request with this HTTP status instead (undefined: serve the keys). */
  failWith(status: number | undefined): void;
  /** Requests arriving from now on wait for `release()`. */
  hold(): void;
  /** Answers every request being held, and stops holding. */
  release(): void;
  /** How many requests have arrived (held or not). */
  readonly requests: number;
  /** Resolves once `count` requests in all have arrived. */
  arrivals(count: number): Promise<void>;
  close(): Promise<void>;
}

export async function startHeldJwksServer(
  initial: readonly JWK[],
  options: { held?: boolean } = {},
): Promise<HeldJwksServer> {
  let keys = [...initial];
  let failure: number | undefined;
  let requests = 0;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  const waiters: { count: number; resolve: () => void }[] = [];

  const hold = () => {
    if (gate !== undefined) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    gate = { promise, open };
  };
  const release = () => {
    gate?.open();
    gate = undefined;
  };
  if (options.held === true) hold();

  const server: Server = createServer((_request, response) => {
    requests += 1;
    for (const waiter of waiters.filter((w) => requests >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    void (gate?.promise ?? Promise.resolve()).then(() => {
      if (response.destroyed) return;
      if (failure !== undefined) {
        response.writeHead(failure).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    publish: (next) => {
      keys = [...next];
    },
    failWith: (status) => {
      failure = status;
    },
    hold,
    release,
    get requests() {
      return requests;
    },
    arrivals: (count) =>
      requests >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
    close: () =>
      new Promise<void>((resolve) => {
        release();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
