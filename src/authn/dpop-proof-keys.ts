import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from 'jose';
import { LRUCache } from 'lru-cache';

/** Public keys remembered at most; the least recently used goes first. */
export const DPOP_PROOF_KEYS_MAX_ENTRIES = 10_000;

/** A proof key, imported, with its RFC 7638 thumbprint; or why it cannot be used. */
export type ProofKey =
  | { readonly kind: 'key'; readonly key: CryptoKey; readonly thumbprint: string }
  | { readonly kind: 'unusable'; readonly description: string };

/**
 * The public keys of DPoP proofs, imported once per key and algorithm rather than on every request: a client
 * signs every request with the same key, and importing it costs as much as verifying the signature. Keyed
 * by the algorithm and the key's RFC 7638 thumbprint, which covers every member that determines the key
 * material (RFC 7638 section 3.2), so a cached key is exactly the key the header carries. Bounded (LRU).
 */
export class DpopProofKeys {
  private readonly keys = new LRUCache<string, CryptoKey>({ max: DPOP_PROOF_KEYS_MAX_ENTRIES });

  /**
   * The key a proof's `jwk` header names, for `alg`: its optional members checked as jose's EmbeddedJWK
   * does (`use` must be `sig`, `alg` the header's) and `key_ops`, when present, allowing `verify`.
   *
   * @param jwk a public JWK: the caller has refused private members and unknown key types.
   */
  async resolve(jwk: Readonly<Record<string, unknown>>, alg: string): Promise<ProofKey> {
    if (jwk['use'] !== undefined && jwk['use'] !== 'sig') {
      return { kind: 'unusable', description: 'the jwk of the DPoP proof is not a signing key' };
    }
    if (jwk['alg'] !== undefined && jwk['alg'] !== alg) {
      return { kind: 'unusable', description: 'the jwk of the DPoP proof is for another algorithm' };
    }
    const ops = jwk['key_ops'];
    if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) {
      return { kind: 'unusable', description: 'the jwk of the DPoP proof may not verify signatures' };
    }
    let thumbprint: string;
    try {
      thumbprint = await calculateJwkThumbprint(jwk as JWK, 'sha256');
    } catch {
      return { kind: 'unusable', description: 'the jwk of the DPoP proof is not a usable public key' };
    }
    const id = `${alg} ${thumbprint}`;
    const cached = this.keys.get(id);
    if (cached !== undefined) return { kind: 'key', key: cached, thumbprint };
    let key: CryptoKey | Uint8Array;
    try {
      key = await importJWK({ ...(jwk as JWK), ext: true }, alg);
    } catch {
      // jose's errors, or WebCrypto refusing the curve, the size or the point.
      return { kind: 'unusable', description: 'the jwk of the DPoP proof is not a usable public key' };
    }
    if (key instanceof Uint8Array || key.type !== 'public') {
      return { kind: 'unusable', description: 'the jwk of the DPoP proof is not a public key' };
    }
    this.keys.set(id, key);
    return { kind: 'key', key, thumbprint };
  }
}
