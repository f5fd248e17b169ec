import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { JWK } from 'jose';

/**
 * How the JWKS endpoint answers:
 * - `keys`: 200 with the published key set;
 * - `hang`: accepts the connection and reads the request, then never answers (until closed);
 * - `http-500`: 500 with an empty body;
 * - `garbage`: 200 `application/json` whose body is not JSON;
 * - `huge`: 200 `application/json`, 10 MB: a key set padded far beyond any limit, sent in chunks, with a
 *   `content-length` on every other answer and without one on the rest.
 */
export type JwksBehaviour = 'keys' | 'hang' | 'http-500' | 'garbage' | 'huge';

/** A JWKS endpoint under the suite's control, counting every request it receives. */
export interface JwksFaultServer {
  readonly url: string;
  /** The key set served from now on (also in `huge`). */
  publish(keys: readonly JWK[]): void;
  behave(behaviour: JwksBehaviour): void;
  /** Requests from now on are counted under `label` too. */
  label(label: string): void;
  /** Requests received in all. */
  readonly requests: number;
  /** Requests received under each label. */
  requestsByLabel(): ReadonlyMap<string, number>;
  /** When the key set was last served, ms since the epoch (-Infinity before it ever was). */
  readonly lastKeysServedAt: number;
  close(): Promise<void>;
}

const HUGE_BYTES = 10 * 1024 * 1024; // 10 MB
const CHUNK_BYTES = 64 * 1024; // 64 KiB

/** Starts the endpoint on 127.0.0.1, a free port, serving `initial` keys. */
export async function startJwksFaultServer(initial: readonly JWK[]): Promise<JwksFaultServer> {
  let keys = [...initial];
  let behaviour: JwksBehaviour = 'keys';
  let label = 'start';
  const byLabel = new Map<string, number>();
  let requests = 0;
  let lastKeysServedAt = Number.NEGATIVE_INFINITY;
  let hugeAnswers = 0;
  const sockets = new Set<Socket>();

  const server = createServer((request, response) => {
    requests += 1;
    byLabel.set(label, (byLabel.get(label) ?? 0) + 1);
    request.resume();
    switch (behaviour) {
      case 'keys':
        lastKeysServedAt = Date.now();
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
        return;
      case 'hang':
        return; // the socket stays open until the client gives up or the server closes
      case 'http-500':
        response.writeHead(500).end();
        return;
      case 'garbage':
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end('<html><body>502 Bad Gateway</body></html>\n{"keys": [');
        return;
      case 'huge':
        sendHuge(response, keys, hugeAnswers++ % 2 === 0);
        return;
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    publish: (next) => {
      keys = [...next];
    },
    behave: (next) => {
      behaviour = next;
    },
    label: (next) => {
      label = next;
    },
    get requests() {
      return requests;
    },
    requestsByLabel: () => byLabel,
    get lastKeysServedAt() {
      return lastKeysServedAt;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** A valid key set padded with one long string member to 10 MB, written as the client reads it. */
function sendHuge(response: ServerResponse, keys: readonly JWK[], withLength: boolean): void {
  const head = `{"keys":${JSON.stringify(keys)},"padding":"`;
  const tail = '"}';
  const padding = HUGE_BYTES - head.length - tail.length;
  response.writeHead(200, {
    'content-type': 'application/json',
    ...(withLength ? { 'content-length': String(HUGE_BYTES) } : {}),
  });
  response.write(head);
  const chunk = 'x'.repeat(CHUNK_BYTES);
  let left = padding;
  const pump = (): void => {
    while (left > 0 && !response.destroyed) {
      const piece = left >= CHUNK_BYTES ? chunk : chunk.slice(0, left);
      left -= piece.length;
      if (!response.write(piece)) {
        response.once('drain', pump);
        return;
      }
    }
    if (!response.destroyed) response.end(tail);
  };
  pump();
}
