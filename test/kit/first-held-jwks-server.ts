import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/**
 * A JWKS endpoint on 127.0.0.1 that holds back its answer to the first request only, until `releaseFirst()`,
 * and answers every later request at once. Under `authz serve --workers 2`, worker 1 starts (and fetches)
 * first: it waits for its keys while worker 2 has them, for as long as the test needs.
 */
export interface FirstHeldJwksServer {
  readonly url: string;
  /** How many requests have arrived. */
  readonly requests: number;
  /** Answers the first request (if it is still waiting). */
  releaseFirst(): void;
  close(): Promise<void>;
}

export async function startFirstHeldJwksServer(keys: readonly JWK[]): Promise<FirstHeldJwksServer> {
  let requests = 0;
  let releaseFirst = () => {};
  const firstReleased = new Promise<void>((resolve) => (releaseFirst = resolve));
  const server = createServer((_request, response) => {
    requests += 1;
    const answer = () => {
      if (!response.destroyed) {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
      }
    };
    if (requests === 1) void firstReleased.then(answer);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get requests() {
      return requests;
    },
    releaseFirst: () => releaseFirst(),
    close: () =>
      new Promise<void>((resolve) => {
        releaseFirst();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
