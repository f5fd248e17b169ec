import { startKeyServer, type KeyServer } from './key-server.js';
import { generateTestKey, signTestToken, type TestKey, type TokenOptions } from './tokens.js';

/** A test issuer whose key set is served over HTTP (`jwks.url`, a policy's jwks_uri), and its tokens. */
export interface ServedIssuer {
  /** The signing key, published at `jwks.url`. */
  readonly key: TestKey;
  readonly jwks: KeyServer;
  /** A valid token of this issuer for its audience unless `options` say otherwise, signed with `signer`. */
  token(options?: TokenOptions, signer?: TestKey): Promise<string>;
  /** The policy's `issuers` entry that trusts it: its issuer, audience and `jwks_uri`, RS256. */
  policyEntry(): Record<string, unknown>;
  close(): Promise<void>;
}

/** Generates an RS256 key `kid` and serves its key set on a free port. */
export async function startServedIssuer(
  kid: string,
  defaults: { readonly issuer: string; readonly audience: string },
): Promise<ServedIssuer> {
  const key = await generateTestKey(kid);
  const jwks = await startKeyServer([key.publicJwk]);
  return {
    key,
    jwks,
    token: (options = {}, signer = key) => signTestToken(signer, defaults, options),
    policyEntry: () => ({
      issuer: defaults.issuer,
      audiences: [defaults.audience],
      jwks_uri: jwks.url,
      algorithms: ['RS256'],
    }),
    close: () => jwks.close(),
  };
}
