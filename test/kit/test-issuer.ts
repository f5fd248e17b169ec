import type { JWK } from 'jose';
import { startHeldJwksServer } from './held-jwks-server.js';

/** A local JWKS endpoint for tests: serve any key set, change it, count requests, or fail on purpose. */
export interface JwksServer {
  readonly url: string;
  /** Keys currently published. */
  publish(keys: readonly JWK[]): void;
  /** Answer every request with this HTTP status instead (undefined: serve normally). */
  failWith(status: number | undefined): void;
  /** How many requests have been served. */
  readonly requests: number;
  close(): Promise<void>;
}

/** Starts a JWKS server on 127.0.0.1 with a free port: a held JWKS server that is never held. */
export function startJwksServer(initial: readonly JWK[]): Promise<JwksServer> {
  return startHeldJwksServer(initial);
}
