import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { keyShapeProblem, RSA_KEY_LIMITS, type KeyShapeProblem } from './public-key-shape.js';

/** Limits of the proof keys remembered, with units; the least recently used goes first. */
export const DPOP_PROOF_KEYS_LIMITS = Object.freeze({
  maxEntries: 10_000, // keys
  // Each key counts as its JWK's key material plus a fixed overhead: a P-256 key some 350 bytes, a 4096-bit
  // RSA key some 1 KiB, so the byte bound holds whatever mix of keys clients send.
  maxBytes: 8 * 1024 * 1024, // 8 MiB
  overheadBytes: 256, // bytes per key: the CryptoKey object and the cache entry
});

/** A proof key, imported, with its RFC 7638 thumbprint; or why it cannot be used. */
export type ProofKey =
  | {
      readonly kind: 'key';
      readonly key: CryptoKey;
      readonly thumbprint: string;
      /** Remembers the key for the next proof: call once a signature made with it has verified. */
      keep(): void;
    }
  | { readonly kind: 'unusable'; readonly description: string };

const SHAPE_DESCRIPTIONS: Readonly<Record<KeyShapeProblem, string>> = {
  algorithm_mismatch: 'the jwk of the DPoP proof cannot serve the algorithm of its header',
  key_too_short: `the RSA modulus of the DPoP proof's jwk is under ${RSA_KEY_LIMITS.minModulusBits} bits`,
  key_too_long: "the RSA modulus of the DPoP proof's jwk is larger than this service accepts",
  exponent_invalid: "the RSA exponent of the DPoP proof's jwk is not an odd number from 65537 to 2^32 - 1",
  malformed: 'the jwk of the DPoP proof is not a usable public key',
};

/**
 * The public keys of DPoP proofs, imported once per key and algorithm rather than on every request: a client
 * signs every request with the same key, and importing it costs as much as verifying the signature. Keyed
 * by the algorithm and the key's RFC 7638 thumbprint, which covers every member that determines the key
 * material (RFC 7638 section 3.2), so a cached key is exactly the key the header carries.
 *
 * What an unproven key can cost is bounded before any work: its type and curve must fit the algorithm and
 * an RSA key's size and exponent must be within RSA_KEY_LIMITS (`keyShapeProblem`), so a garbage signature
 * with a 16384-bit modulus or a huge exponent is refused unread. A key is remembered only once a signature
 * made with it verified, and the cache is bounded in entries and in bytes.
 */
export class DpopProofKeys {
  private readonly keys = new LRUCache<string, { readonly key: CryptoKey; readonly bytes: number }>({
    max: DPOP_PROOF_KEYS_LIMITS.maxEntries,
    maxSize: DPOP_PROOF_KEYS_LIMITS.maxBytes,
    sizeCalculation: (entry) => entry.bytes,
  });

  /** How many keys are remembered now. */
  get size(): number {
    return this.keys.size;
  }

  /** The bytes the remembered keys count for (see DPOP_PROOF_KEYS_LIMITS). */
  get bytes(): number {
    return this.keys.calculatedSize;
  }

  /**
   * The key a proof's `jwk` header names, for `alg`: its optional members checked as jose's EmbeddedJWK
   * does (`use` must be `sig`, `alg` the header's) and `key_ops`, when present, allowing `verify`.
   *
   * @param jwk a public JWK: the caller has refused private members and unknown key types.
   * @param maxRsaKeyBits the largest RSA modulus accepted (`max_rsa_key_bits`)
   */
  async resolve(
    jwk: Readonly<Record<string, unknown>>,
    alg: string,
    maxRsaKeyBits: number = RSA_KEY_LIMITS.defaultMaxModulusBits,
  ): Promise<ProofKey> {
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
    const problem = keyShapeProblem(jwk, alg, maxRsaKeyBits);
    if (problem !== undefined) return { kind: 'unusable', description: SHAPE_DESCRIPTIONS[problem] };
    let thumbprint: string;
    try {
      thumbprint = await calculateJwkThumbprint(jwk as JWK, 'sha256');
    } catch {
      return { kind: 'unusable', description: SHAPE_DESCRIPTIONS.malformed };
    }
    const id = `${alg} ${thumbprint}`;
    const cached = this.keys.get(id);
    if (cached !== undefined) return { kind: 'key', key: cached.key, thumbprint, keep: () => undefined };
    let key: CryptoKey | Uint8Array;
    try {
      key = await importJWK({ ...(jwk as JWK), ext: true }, alg);
    } catch {
      // jose's errors, or WebCrypto refusing the curve, the size or the point.
      return { kind: 'unusable', description: SHAPE_DESCRIPTIONS.malformed };
    }
    if (key instanceof Uint8Array || key.type !== 'public') {
      return { kind: 'unusable', description: 'the jwk of the DPoP proof is not a public key' };
    }
    const entry = { key, bytes: materialLength(jwk) + DPOP_PROOF_KEYS_LIMITS.overheadBytes };
    return { kind: 'key', key, thumbprint, keep: () => void this.keys.set(id, entry) };
  }
}

/** The characters of a public key's material members (`n`, `e`, `x`, `y`): what its size in memory follows. */
function materialLength(jwk: Readonly<Record<string, unknown>>): number {
  let length = 0;
  for (const member of ['n', 'e', 'x', 'y']) {
    const value = jwk[member];
    if (typeof value === 'string') length += value.length;
  }
  return length;
}
