import { calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/** The one signing algorithm of the development identity provider. Development only. */
export const SIGNING_ALGORITHM = 'RS256';

/**
 * Published keys are capped: each rotation without retiring adds one, and a long-running dev session that
 * rotates in a loop must not grow the key set without end. The oldest are dropped first. Development only.
 */
export const MAX_PUBLISHED_KEYS = 5;

/** A signing key: the private half stays in memory, the public half is published. Development only. */
export interface SigningKey {
  /** RFC 7638 thumbprint of the public key. */
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** `{kty, n, e, kid, alg, use}`. */
  readonly publicJwk: JWK;
}

/** What a rotation did, for the caller and the `keys_rotated` log line. Development only. */
export interface Rotation {
  readonly current: SigningKey;
  /** kids no longer published. */
  readonly retired: readonly string[];
  /** kids published now, current first. */
  readonly published: readonly string[];
}

/**
 * The development identity provider's keys, generated in memory (RSA 2048, RS256) and never written
 * anywhere: a restart means new keys, which verifiers pick up through the JWKS. Development only.
 */
export class SigningKeyRing {
  /** Newest (current) first. */
  private keys: SigningKey[];

  private constructor(first: SigningKey) {
    this.keys = [first];
  }

  /** A ring holding one freshly generated key. */
  static async create(): Promise<SigningKeyRing> {
    return new SigningKeyRing(await generateSigningKey());
  }

  /** The key new tokens are signed with. */
  get current(): SigningKey {
    return this.keys[0];
  }

  /**
   * Makes a new key current. The previous keys stay published (up to `MAX_PUBLISHED_KEYS`) so tokens they
   * signed keep verifying until they expire; `retirePrevious` drops them, so such tokens stop verifying.
   */
  async rotate(options: { retirePrevious?: boolean } = {}): Promise<Rotation> {
    const next = await generateSigningKey();
    const kept = options.retirePrevious === true ? [] : this.keys.slice(0, MAX_PUBLISHED_KEYS - 1);
    const retired = this.keys.filter((key) => !kept.includes(key)).map((key) => key.kid);
    this.keys = [next, ...kept];
    return { current: next, retired, published: this.keys.map((key) => key.kid) };
  }

  /** The JWK Set document (RFC 7517 section 5) of every published key. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((key) => ({ ...key.publicJwk })) };
  }
}

async function generateSigningKey(): Promise<SigningKey> {
  // Not extractable: the private key is only ever used to sign, in this process.
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALGORITHM, { modulusLength: 2048 });
  const { kty, n, e } = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint({ kty, n, e });
  return { kid, privateKey, publicJwk: { kty, n, e, kid, alg: SIGNING_ALGORITHM, use: 'sig' } };
}
