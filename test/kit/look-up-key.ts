import type { IssuerKeys } from '../../src/authn/issuer-keys.js';

/** Resolves the key for `kid` the way jwtVerify would; 'found' or the error code. */
export async function lookUp(keys: IssuerKeys, kid: string): Promise<string> {
  try {
    const key = await keys.getKey({ alg: 'RS256', kid }, { payload: '', signature: '' });
    return key === undefined ? 'nothing' : 'found';
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
}
