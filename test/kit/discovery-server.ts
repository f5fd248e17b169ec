import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/** Where the server publishes what. */
export const DISCOVERY_PATHS = Object.freeze({
  /** OpenID Connect Discovery 1.0 section 4. */
  openidConfiguration: '/.well-known/openid-configuration',
  /** RFC 8414 section 3: the same metadata, at the OAuth path. */
  oauthAuthorizationServer: '/.well-known/oauth-authorization-server',
  jwks: '/jwks.json',
});

/**
 * A local identity provider's key publication for tests, on 127.0.0.1: discovery metadata at both
 * well-known paths, and the key set its `jwks_uri` names. Every request is recorded.
 */
export interface DiscoveryServer {
  /** `http://127.0.0.1:PORT`, the issuer the default metadata names (no trailing slash). */
  readonly issuer: string;
  /** `issuer` + `/.well-known/openid-configuration`. */
  readonly metadataUrl: string;
  /** `issuer` + `/jwks.json`, the default metadata's `jwks_uri`. */
  readonly jwksUri: string;
  /** The path of every request so far, in order. */
  readonly paths: readonly string[];
  /** Keys served at `jwksUri` from now on. */
  publish(keys: readonly JWK[]): void;
  /** Metadata served from now on (undefined: the default `{issuer, jwks_uri, ...}`). */
  serveMetadata(metadata: Record<string, unknown> | undefined): void;
  /** Answer with this HTTP status instead (undefined: serve normally): the metadata, the keys, or both. */
  failWith(status: number | undefined, only?: 'metadata' | 'keys'): void;
  close(): Promise<void>;
}

/** Starts a discovery server on 127.0.0.1 with a free port. */
export async function startDiscoveryServer(initial: readonly JWK[]): Promise<DiscoveryServer> {
  let keys = [...initial];
  let metadata: Record<string, unknown> | undefined;
  const failures: { metadata?: number; keys?: number } = {};
  const paths: string[] = [];
  let issuer = '';

  const defaultMetadata = () => ({
    issuer,
    jwks_uri: `${issuer}${DISCOVERY_PATHS.jwks}`,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
  });

  const server: Server = createServer((request, response) => {
    const path = request.url ?? '';
    paths.push(path);
    const json = (failure: number | undefined, body: unknown) => {
      if (failure !== undefined) response.writeHead(failure).end();
      else response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (path === DISCOVERY_PATHS.openidConfiguration || path === DISCOVERY_PATHS.oauthAuthorizationServer) {
      json(failures.metadata, metadata ?? defaultMetadata());
    } else if (path === DISCOVERY_PATHS.jwks) {
      json(failures.keys, { keys });
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  issuer = `http://127.0.0.1:${port}`;

  return {
    issuer,
    metadataUrl: `${issuer}${DISCOVERY_PATHS.openidConfiguration}`,
    jwksUri: `${issuer}${DISCOVERY_PATHS.jwks}`,
    get paths() {
      return [...paths];
    },
    publish: (next) => {
      keys = [...next];
    },
    serveMetadata: (next) => {
      metadata = next;
    },
    failWith: (status, only) => {
      if (only !== 'keys') failures.metadata = status;
      if (only !== 'metadata') failures.keys = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
