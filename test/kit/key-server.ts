import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/** Where the server publishes what. */
export const KEY_SERVER_PATHS = Object.freeze({
  /** OpenID Connect Discovery 1.0 section 4. */
  openidConfiguration: '/.well-known/openid-configuration',
  /** RFC 8414 section 3: the same metadata, at the OAuth path. */
  oauthAuthorizationServer: '/.well-known/oauth-authorization-server',
  /** The key set, named by the default metadata's `jwks_uri`. */
  jwks: '/.well-known/jwks.json',
});

/**
 * How a part (the key set, the metadata) is answered:
 * - `keys`: 200 with the published key set, or with the metadata;
 * - `http-NNN`: that HTTP status with an empty body;
 * - `hang`: reads the request, then never answers (until the server closes);
 * - `garbage`: 200 `application/json` whose body is not JSON;
 * - `huge`: 200 `application/json`, 10 MB: the normal answer padded far beyond any limit, sent in chunks
 *   as the client reads them, with a `content-length` on every other such answer and without one on the rest.
 */
export type KeyServerBehaviour = 'keys' | `http-${number}` | 'hang' | 'garbage' | 'huge';

/** What the server publishes: the key set, or the discovery metadata (at both well-known paths). */
export type KeyServerPart = 'keys' | 'metadata';

/** Which requests wait for `release()`: every one arriving, or only the next one to arrive. */
export type KeyServerHold = 'every' | 'first';

/**
 * A local identity provider's key publication for tests, on 127.0.0.1: the key set at `url`, discovery
 * metadata at both well-known paths. Each part can misbehave on purpose, answers can be held back until the
 * test releases them (no sleeping and hoping), and every request is counted.
 */
export interface KeyServer {
  /** `http://127.0.0.1:PORT`, the issuer the default metadata names (no trailing slash). */
  readonly issuer: string;
  /** The key set's URL: `issuer` + `/.well-known/jwks.json`, the default metadata's `jwks_uri`. */
  readonly url: string;
  /** `issuer` + `/.well-known/openid-configuration`. */
  readonly metadataUrl: string;
  /** Keys served from now on (also in `huge`, and to requests being held). */
  publish(keys: readonly JWK[]): void;
  /** Metadata served from now on (undefined: the default `{issuer, jwks_uri, ...}`). */
  serveMetadata(metadata: Record<string, unknown> | undefined): void;
  /** How requests are answered from now on (also those being held): both parts, or `only` one. */
  behave(behaviour: KeyServerBehaviour, only?: KeyServerPart): void;
  /** Requests arriving from now on wait for `release()`: every one (the default), or only the next one. */
  hold(which?: KeyServerHold): void;
  /** Answers every request being held, and stops holding. */
  release(): void;
  /** Requests from now on are counted under `label` too (until then: `start`). */
  label(label: string): void;
  /** Requests received in all (held or not, on any path). */
  readonly requests: number;
  /** Requests received under each label. */
  requestsByLabel(): ReadonlyMap<string, number>;
  /** The path of every request so far, in order. */
  readonly paths: readonly string[];
  /** Resolves once `count` requests in all have arrived. */
  arrivals(count: number): Promise<void>;
  /** When the key set was last served, ms since the epoch (-Infinity before it ever was). */
  readonly lastKeysServedAt: number;
  /** Stops listening and ends every connection, the held and hanging ones too. */
  close(): Promise<void>;
}

const HUGE_BYTES = 10 * 1024 * 1024; // 10 MB
const CHUNK_BYTES = 64 * 1024; // 64 KiB

/** Starts the server on 127.0.0.1, a free port, serving `initial` keys; `hold` holds from the first request. */
export async function startKeyServer(
  initial: readonly JWK[],
  options: { hold?: KeyServerHold } = {},
): Promise<KeyServer> {
  let keys = [...initial];
  let metadata: Record<string, unknown> | undefined;
  const behaviours: Record<KeyServerPart, KeyServerBehaviour> = { keys: 'keys', metadata: 'keys' };
  let label = 'start';
  const byLabel = new Map<string, number>();
  const paths: string[] = [];
  let requests = 0;
  let lastKeysServedAt = Number.NEGATIVE_INFINITY;
  let hugeAnswers = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  let holding = options.hold;
  let gate = openable();
  let issuer = '';

  const release = () => {
    holding = undefined;
    gate.open();
    gate = openable();
  };
  const defaultMetadata = () => ({
    issuer,
    jwks_uri: `${issuer}${KEY_SERVER_PATHS.jwks}`,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
  });

  /** Answers `part` as it behaves now (read when answering, so that a held request sees the latest). */
  const answer = (response: ServerResponse, part: KeyServerPart): void => {
    if (response.destroyed) return;
    const behaviour = behaviours[part];
    const body = () => (part === 'keys' ? { keys } : (metadata ?? defaultMetadata()));
    switch (behaviour) {
      case 'keys':
        if (part === 'keys') lastKeysServedAt = Date.now();
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body()));
        return;
      case 'hang':
        return; // the socket stays open until the client gives up or the server closes
      case 'garbage':
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end('<html><body>502 Bad Gateway</body></html>\n{"keys": [');
        return;
      case 'huge':
        sendHuge(response, body(), hugeAnswers++ % 2 === 0);
        return;
      default:
        response.writeHead(Number(behaviour.slice('http-'.length))).end();
    }
  };

  const server = createServer((request, response) => {
    const path = request.url ?? '';
    paths.push(path);
    requests += 1;
    byLabel.set(label, (byLabel.get(label) ?? 0) + 1);
    for (const waiter of waiters.filter((w) => requests >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    request.resume();
    const part: KeyServerPart | undefined =
      path === KEY_SERVER_PATHS.jwks
        ? 'keys'
        : path === KEY_SERVER_PATHS.openidConfiguration || path === KEY_SERVER_PATHS.oauthAuthorizationServer
          ? 'metadata'
          : undefined;
    if (part === undefined) {
      response.writeHead(404).end();
      return;
    }
    if (holding === undefined) {
      answer(response, part);
      return;
    }
    if (holding === 'first') holding = undefined;
    void gate.opened.then(() => answer(response, part));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  issuer = `http://127.0.0.1:${port}`;

  return {
    issuer,
    url: `${issuer}${KEY_SERVER_PATHS.jwks}`,
    metadataUrl: `${issuer}${KEY_SERVER_PATHS.openidConfiguration}`,
    publish: (next) => {
      keys = [...next];
    },
    serveMetadata: (next) => {
      metadata = next;
    },
    behave: (next, only) => {
      if (only !== 'metadata') behaviours.keys = next;
      if (only !== 'keys') behaviours.metadata = next;
    },
    hold: (which = 'every') => {
      holding = which;
    },
    release,
    label: (next) => {
      label = next;
    },
    get requests() {
      return requests;
    },
    requestsByLabel: () => byLabel,
    get paths() {
      return [...paths];
    },
    arrivals: (count) =>
      requests >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
    get lastKeysServedAt() {
      return lastKeysServedAt;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Ends the held and hanging exchanges too; a held answer released now finds its response destroyed.
        server.closeAllConnections();
        release();
      }),
  };
}

/** A promise that resolves when `open()` is called. */
function openable(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** The normal answer padded with one long string member to 10 MB, written as the client reads it. */
function sendHuge(response: ServerResponse, body: object, withLength: boolean): void {
  const normal = JSON.stringify(body);
  const head = `${normal.slice(0, -1)}${normal === '{}' ? '' : ','}"padding":"`;
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
